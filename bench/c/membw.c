/* Memory read bandwidth for benchmark 3: streams a buffer much larger than the caches and sums it (the sum keeps
 * the reads from being optimised away), compiled with gcc -O3. Prints the best of several passes as JSON.
 * usage: membw MIB PASSES */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: membw MIB PASSES\n"); return 2; }
  size_t n = (size_t)atol(argv[1]) << 17; /* MiB in uint64 words */
  int passes = atoi(argv[2]);
  uint64_t *a = aligned_alloc(64, n * 8);
  for (size_t i = 0; i < n; i++) a[i] = i;
  double best = 0;
  uint64_t sum = 0;
  for (int p = 0; p < passes; p++) {
    double t0 = now();
    for (size_t i = 0; i < n; i++) sum += a[i];
    double gbs = n * 8 / (now() - t0) / 1e9;
    if (gbs > best) best = gbs;
  }
  printf("{\"readGBps\": %.2f, \"checksum\": %llu}\n", best, (unsigned long long)sum);
  return 0;
}
