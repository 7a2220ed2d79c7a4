/* The reference pooled-lookup kernels for benchmark 3, over the same table and indices files as the
 * WebAssembly kernel, compiled by the benchmark with gcc -O3: "naive" is the textbook loop (for each index, add
 * its row into the output), "blocked" is the loop order of shard-server/kernels/pool.wat (64-byte column
 * blocks summed over all of a sample's rows in registers). Prints pooled lookups per second on one core as JSON.
 * usage: pool naive|blocked TABLE_FILE ROWS DIM INDICES_FILE BATCH SECONDS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *slurp(const char *path, size_t bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(2); }
  void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p || fread(p, 1, bytes, f) != bytes) { fprintf(stderr, "%s: short read\n", path); exit(2); }
  fclose(f);
  return p;
}

static void pool_naive(const float *table, int dim, const uint32_t *offsets, const uint32_t *indices, int batch, float *out) {
  for (int b = 0; b < batch; b++) {
    float *o = out + (size_t)b * dim;
    memset(o, 0, sizeof(float) * dim);
    for (uint32_t k = offsets[b]; k < offsets[b + 1]; k++) {
      const float *row = table + (size_t)indices[k] * dim;
      for (int d = 0; d < dim; d++) o[d] += row[d];
    }
  }
}

static void pool_blocked(const float *table, int dim, const uint32_t *offsets, const uint32_t *indices, int batch, float *out) {
  for (int b = 0; b < batch; b++) {
    float *o = out + (size_t)b * dim;
    int d = 0;
    for (; d + 16 <= dim; d += 16) {
      float acc[16] = {0};
      for (uint32_t k = offsets[b]; k < offsets[b + 1]; k++) {
        const float *row = table + (size_t)indices[k] * dim + d;
        for (int j = 0; j < 16; j++) acc[j] += row[j];
      }
      memcpy(o + d, acc, sizeof acc);
    }
    for (; d < dim; d++) {
      float s = 0;
      for (uint32_t k = offsets[b]; k < offsets[b + 1]; k++) s += table[(size_t)indices[k] * dim + d];
      o[d] = s;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 8) { fprintf(stderr, "usage: pool naive|blocked TABLE ROWS DIM INDICES BATCH SECONDS\n"); return 2; }
  void (*pool)(const float *, int, const uint32_t *, const uint32_t *, int, float *) = strcmp(argv[1], "naive") == 0 ? pool_naive : pool_blocked;
  argv++;
  long rows = atol(argv[2]);
  int dim = atoi(argv[3]), batch = atoi(argv[5]);
  double seconds = atof(argv[6]);
  FILE *f = fopen(argv[4], "rb");
  if (!f) { perror(argv[4]); return 2; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f) / 4;
  fclose(f);
  const float *table = slurp(argv[1], (size_t)rows * dim * 4);
  const uint32_t *indices = slurp(argv[4], (size_t)n * 4);
  uint32_t *offsets = malloc(sizeof(uint32_t) * (batch + 1));
  for (int b = 0; b <= batch; b++) offsets[b] = (uint32_t)((long)n * b / batch);
  float *out = aligned_alloc(64, sizeof(float) * batch * dim);
  double checksum = 0;
  long calls = 0;
  pool(table, dim, offsets, indices, batch, out); /* warm-up */
  double t0 = now(), t;
  do {
    pool(table, dim, offsets, indices, batch, out);
    checksum += out[calls % (batch * dim)];
    calls++;
    t = now();
  } while (t - t0 < seconds);
  printf("{\"lookupsPerSecond\": %.0f, \"checksum\": %g}\n", calls * (double)n / (t - t0), checksum);
  return 0;
}
