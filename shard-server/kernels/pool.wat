;; The pooled-lookup kernel in WebAssembly SIMD, the hot loop of every sparse shard:
;; out[b][0..dim) = sum of table rows indices[offsets[b] .. offsets[b+1]). Addresses are byte offsets into the
;; imported memory, which holds the table and each thread's scratch area.
;;
;; For each sample the row is cut into 64-byte column blocks (a cache line: four f32x4 accumulators held in
;; registers), then 16-byte blocks, then single floats; each block sums over all of the sample's rows. The loads of
;; one pass are independent of each other, so many cache misses are in flight at once, and the output is written
;; once. Every element is still summed in index order starting from +0, so the sums are bit-identical to the
;; JavaScript loop's.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "pool")
    (param $table i32) (param $dim i32) (param $offs i32) (param $idx i32) (param $batch i32) (param $out i32)
    (local $b i32) (local $k i32) (local $k0 i32) (local $k1 i32) (local $row i32) (local $o i32) (local $d i32)
    (local $rowBytes i32) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s f32)
    (local.set $rowBytes (i32.shl (local.get $dim) (i32.const 2)))
    (local.set $o (local.get $out))
    (block $doneB
      (loop $loopB
        (br_if $doneB (i32.ge_u (local.get $b) (local.get $batch)))
        (local.set $k0 (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
        (local.set $k1 (i32.load (i32.add (local.get $offs) (i32.shl (i32.add (local.get $b) (i32.const 1)) (i32.const 2)))))
        (local.set $d (i32.const 0))
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
        (br $loopB)))))
