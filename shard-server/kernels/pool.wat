;; The pooled-lookup kernel in WebAssembly SIMD, the hot loop of every sparse shard:
;; out[b][0..dim) = sum of table rows indices[offsets[b] .. offsets[b+1]). Addresses are byte offsets into the
;; imported memory, which holds the table and each thread's scratch area.
;;
;; For each sample the row is cut into 64-byte column blocks (a cache line: four f32x4 accumulators held in
;; registers), then 16-byte blocks, then single floats; each block sums over all of the sample's rows. The loads of
;; one pass are independent of each other, so many cache misses are in flight at once, and the output is written
;; once. Every element is still summed in index order starting from +0, so the sums are bit-identical to the
;; JavaScript loop's.
;;
;; Measured on x64 (V8 11, Zen 4) and kept this way: a whole 128-byte row in one pass needs eight accumulators and
;; eight loaded vectors, one more than the fifteen SIMD registers V8 allocates, and the accumulator it spills makes
;; the pass slower than two; pairing two samples spills the same way, and unrolling the index loop gains nothing.
;; A plain load cannot prefetch rows ahead (it holds the reorder buffer until its line arrives, so it only costs).
;; What does help on rows that miss the cache is the `touch` argument: the first pass also loads one word of each
;; of the row's other lines, so all of a row's misses go out together, and the later passes find the row cached
;; (rows from DRAM: +25-55% for rows of 128-512 bytes; on rows in L2 it costs up to 15%, so the caller chooses).
;; `stream` is for small tables that most of a call's lookups will cover: one load per line in address order,
;; which the hardware prefetchers turn into a sequential read, much cheaper than the same lines missed at random.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "pool")
    (param $table i32) (param $dim i32) (param $offs i32) (param $idx i32) (param $batch i32) (param $out i32) (param $touch i32)
    (local $b i32) (local $k i32) (local $k0 i32) (local $k1 i32) (local $row i32) (local $o i32) (local $d i32)
    (local $rowBytes i32) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s f32) (local $e i32)
    (local.set $rowBytes (i32.shl (local.get $dim) (i32.const 2)))
    (local.set $o (local.get $out))
    (block $doneB
      (loop $loopB
        (br_if $doneB (i32.ge_u (local.get $b) (local.get $batch)))
        (local.set $k0 (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
        (local.set $k1 (i32.load (i32.add (local.get $offs) (i32.shl (i32.add (local.get $b) (i32.const 1)) (i32.const 2)))))
        (local.set $d (i32.const 0))
        ;; the first 64-byte block, touching the rest of each row (only rows wider than one block have a rest)
        (if (i32.and (local.get $touch) (i32.gt_u (local.get $rowBytes) (i32.const 64)))
          (then
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $a1 (v128.const i32x4 0 0 0 0))
            (local.set $a2 (v128.const i32x4 0 0 0 0))
            (local.set $a3 (v128.const i32x4 0 0 0 0))
            (local.set $k (local.get $k0))
            (block $doneK
              (loop $loopK
                (br_if $doneK (i32.ge_u (local.get $k) (local.get $k1)))
                (local.set $row
                  (i32.add
                    (local.get $table)
                    (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes))))
                ;; the touches stay inside the row (offset < rowBytes), so they never read past the table
                (drop (i32.load offset=64 (local.get $row)))
                (local.set $e (i32.const 128))
                (block $doneE
                  (loop $loopE
                    (br_if $doneE (i32.ge_u (local.get $e) (local.get $rowBytes)))
                    (drop (i32.load (i32.add (local.get $row) (local.get $e))))
                    (local.set $e (i32.add (local.get $e) (i32.const 64)))
                    (br $loopE)))
                (local.set $a0 (f32x4.add (local.get $a0) (v128.load offset=0 (local.get $row))))
                (local.set $a1 (f32x4.add (local.get $a1) (v128.load offset=16 (local.get $row))))
                (local.set $a2 (f32x4.add (local.get $a2) (v128.load offset=32 (local.get $row))))
                (local.set $a3 (f32x4.add (local.get $a3) (v128.load offset=48 (local.get $row))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $loopK)))
            (v128.store offset=0 (local.get $o) (local.get $a0))
            (v128.store offset=16 (local.get $o) (local.get $a1))
            (v128.store offset=32 (local.get $o) (local.get $a2))
            (v128.store offset=48 (local.get $o) (local.get $a3))
            (local.set $d (i32.const 64))))
        ;; 64-byte blocks
        (block $done64
          (loop $loop64
            (br_if $done64 (i32.gt_u (i32.add (local.get $d) (i32.const 64)) (local.get $rowBytes)))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $a1 (v128.const i32x4 0 0 0 0))
            (local.set $a2 (v128.const i32x4 0 0 0 0))
            (local.set $a3 (v128.const i32x4 0 0 0 0))
            (local.set $k (local.get $k0))
            (block $doneK
              (loop $loopK
                (br_if $doneK (i32.ge_u (local.get $k) (local.get $k1)))
                (local.set $row
                  (i32.add
                    (i32.add (local.get $table) (local.get $d))
                    (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes))))
                (local.set $a0 (f32x4.add (local.get $a0) (v128.load offset=0 (local.get $row))))
                (local.set $a1 (f32x4.add (local.get $a1) (v128.load offset=16 (local.get $row))))
                (local.set $a2 (f32x4.add (local.get $a2) (v128.load offset=32 (local.get $row))))
                (local.set $a3 (f32x4.add (local.get $a3) (v128.load offset=48 (local.get $row))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $loopK)))
            (v128.store offset=0 (i32.add (local.get $o) (local.get $d)) (local.get $a0))
            (v128.store offset=16 (i32.add (local.get $o) (local.get $d)) (local.get $a1))
            (v128.store offset=32 (i32.add (local.get $o) (local.get $d)) (local.get $a2))
            (v128.store offset=48 (i32.add (local.get $o) (local.get $d)) (local.get $a3))
            (local.set $d (i32.add (local.get $d) (i32.const 64)))
            (br $loop64)))
        ;; 16-byte blocks
        (block $done16
          (loop $loop16
            (br_if $done16 (i32.gt_u (i32.add (local.get $d) (i32.const 16)) (local.get $rowBytes)))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $k (local.get $k0))
            (block $doneK
              (loop $loopK
                (br_if $doneK (i32.ge_u (local.get $k) (local.get $k1)))
                (local.set $a0
                  (f32x4.add (local.get $a0)
                    (v128.load
                      (i32.add
                        (i32.add (local.get $table) (local.get $d))
                        (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes))))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $loopK)))
            (v128.store (i32.add (local.get $o) (local.get $d)) (local.get $a0))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (br $loop16)))
        ;; single floats
        (block $done4
          (loop $loop4
            (br_if $done4 (i32.ge_u (local.get $d) (local.get $rowBytes)))
            (local.set $s (f32.const 0))
            (local.set $k (local.get $k0))
            (block $doneK
              (loop $loopK
                (br_if $doneK (i32.ge_u (local.get $k) (local.get $k1)))
                (local.set $s
                  (f32.add (local.get $s)
                    (f32.load
                      (i32.add
                        (i32.add (local.get $table) (local.get $d))
                        (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes))))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $loopK)))
            (f32.store (i32.add (local.get $o) (local.get $d)) (local.get $s))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (br $loop4)))
        (local.set $o (i32.add (local.get $o) (local.get $rowBytes)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $loopB))))
  ;; Rows of a row-wise int8 table (contracts/model-format.ts): dim bytes q padded to a multiple of 4 (the stride),
  ;; then the row's fp32 scale and bias; element d is (q[d] x scale) + bias, two fp32 operations, then summed in
  ;; index order from +0 like the fp32 kernel, so the sums are bit-identical to the JavaScript loop's. 16 values a
  ;; block (one 16-byte load widened to four f32x4), then 4 (the padding makes the load safe), then single values.
  (func (export "pool_i8")
    (param $table i32) (param $dim i32) (param $offs i32) (param $idx i32) (param $batch i32) (param $out i32)
    (local $b i32) (local $k i32) (local $k0 i32) (local $k1 i32) (local $row i32) (local $o i32) (local $d i32)
    (local $stride i32) (local $rowBytes i32) (local $sc v128) (local $bi v128) (local $v v128) (local $w v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s f32)
    (local.set $stride (i32.and (i32.add (local.get $dim) (i32.const 3)) (i32.const -4)))
    (local.set $rowBytes (i32.add (local.get $stride) (i32.const 8)))
    (local.set $o (local.get $out))
    (block $doneB
      (loop $loopB
        (br_if $doneB (i32.ge_u (local.get $b) (local.get $batch)))
        (local.set $k0 (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
        (local.set $k1 (i32.load (i32.add (local.get $offs) (i32.shl (i32.add (local.get $b) (i32.const 1)) (i32.const 2)))))
        (local.set $d (i32.const 0))
        ;; 16-value blocks
        (block $done16
          (loop $loop16
            (br_if $done16 (i32.gt_u (i32.add (local.get $d) (i32.const 16)) (local.get $dim)))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $a1 (v128.const i32x4 0 0 0 0))
            (local.set $a2 (v128.const i32x4 0 0 0 0))
            (local.set $a3 (v128.const i32x4 0 0 0 0))
            (local.set $k (local.get $k0))
            (block $doneK
              (loop $loopK
                (br_if $doneK (i32.ge_u (local.get $k) (local.get $k1)))
                (local.set $row
                  (i32.add
                    (local.get $table)
                    (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes))))
                (local.set $sc (f32x4.splat (f32.load (i32.add (local.get $row) (local.get $stride)))))
                (local.set $bi (f32x4.splat (f32.load offset=4 (i32.add (local.get $row) (local.get $stride)))))
                (local.set $v (v128.load (i32.add (local.get $row) (local.get $d))))
                (local.set $w (i16x8.extend_low_i8x16_u (local.get $v)))
                (local.set $a0 (f32x4.add (local.get $a0)
                  (f32x4.add (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $w))) (local.get $sc)) (local.get $bi))))
                (local.set $a1 (f32x4.add (local.get $a1)
                  (f32x4.add (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_high_i16x8_u (local.get $w))) (local.get $sc)) (local.get $bi))))
                (local.set $w (i16x8.extend_high_i8x16_u (local.get $v)))
                (local.set $a2 (f32x4.add (local.get $a2)
                  (f32x4.add (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $w))) (local.get $sc)) (local.get $bi))))
                (local.set $a3 (f32x4.add (local.get $a3)
                  (f32x4.add (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_high_i16x8_u (local.get $w))) (local.get $sc)) (local.get $bi))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $loopK)))
            (v128.store offset=0 (i32.add (local.get $o) (i32.shl (local.get $d) (i32.const 2))) (local.get $a0))
            (v128.store offset=16 (i32.add (local.get $o) (i32.shl (local.get $d) (i32.const 2))) (local.get $a1))
            (v128.store offset=32 (i32.add (local.get $o) (i32.shl (local.get $d) (i32.const 2))) (local.get $a2))
            (v128.store offset=48 (i32.add (local.get $o) (i32.shl (local.get $d) (i32.const 2))) (local.get $a3))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (br $loop16)))
        ;; 4-value blocks
        (block $done4
          (loop $loop4
            (br_if $done4 (i32.gt_u (i32.add (local.get $d) (i32.const 4)) (local.get $dim)))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $k (local.get $k0))
            (block $doneK
              (loop $loopK
                (br_if $doneK (i32.ge_u (local.get $k) (local.get $k1)))
                (local.set $row
                  (i32.add
                    (local.get $table)
                    (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes))))
                (local.set $sc (f32x4.splat (f32.load (i32.add (local.get $row) (local.get $stride)))))
                (local.set $bi (f32x4.splat (f32.load offset=4 (i32.add (local.get $row) (local.get $stride)))))
                (local.set $w (i16x8.extend_low_i8x16_u (v128.load32_zero (i32.add (local.get $row) (local.get $d)))))
                (local.set $a0 (f32x4.add (local.get $a0)
                  (f32x4.add (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $w))) (local.get $sc)) (local.get $bi))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $loopK)))
            (v128.store (i32.add (local.get $o) (i32.shl (local.get $d) (i32.const 2))) (local.get $a0))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (br $loop4)))
        ;; single values
        (block $done1
          (loop $loop1
            (br_if $done1 (i32.ge_u (local.get $d) (local.get $dim)))
            (local.set $s (f32.const 0))
            (local.set $k (local.get $k0))
            (block $doneK
              (loop $loopK
                (br_if $doneK (i32.ge_u (local.get $k) (local.get $k1)))
                (local.set $row
                  (i32.add
                    (local.get $table)
                    (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes))))
                (local.set $s
                  (f32.add (local.get $s)
                    (f32.add
                      (f32.mul
                        (f32.convert_i32_u (i32.load8_u (i32.add (local.get $row) (local.get $d))))
                        (f32.load (i32.add (local.get $row) (local.get $stride))))
                      (f32.load offset=4 (i32.add (local.get $row) (local.get $stride))))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $loopK)))
            (f32.store (i32.add (local.get $o) (i32.shl (local.get $d) (i32.const 2))) (local.get $s))
            (local.set $d (i32.add (local.get $d) (i32.const 1)))
            (br $loop1)))
        (local.set $o (i32.add (local.get $o) (i32.shl (local.get $dim) (i32.const 2))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $loopB))))
  ;; One load per 64-byte line of [p, p + bytes), in address order.
  (func (export "stream") (param $p i32) (param $bytes i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $p) (local.get $bytes)))
    (block $done
      (loop $loop
        (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 256)) (local.get $end)))
        (drop (i32.load8_u offset=0 (local.get $p)))
        (drop (i32.load8_u offset=64 (local.get $p)))
        (drop (i32.load8_u offset=128 (local.get $p)))
        (drop (i32.load8_u offset=192 (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 256)))
        (br $loop)))
    (block $done1
      (loop $loop1
        (br_if $done1 (i32.ge_u (local.get $p) (local.get $end)))
        (drop (i32.load8_u (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $loop1)))))
