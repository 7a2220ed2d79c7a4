;; The pooled-lookup kernel in WebAssembly SIMD (4 x f32 per instruction), the hot loop of every sparse shard:
;; out[b][0..dim) = sum of table rows indices[offsets[b] .. offsets[b+1]). Addresses are byte offsets into the
;; imported memory, which holds the table and each thread's scratch area. The additions run in the same order
;; as the JavaScript kernel, so both give bit-identical sums.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "pool")
    (param $table i32) (param $dim i32) (param $offs i32) (param $idx i32) (param $batch i32) (param $out i32)
    (local $b i32) (local $k i32) (local $end i32) (local $row i32) (local $o i32) (local $d i32)
    (local $rowBytes i32) (local $vecBytes i32)
    (local.set $rowBytes (i32.shl (local.get $dim) (i32.const 2)))
    (local.set $vecBytes (i32.and (local.get $rowBytes) (i32.const -16)))
    (local.set $o (local.get $out))
    (block $doneB
      (loop $loopB
        (br_if $doneB (i32.ge_u (local.get $b) (local.get $batch)))
        (memory.fill (local.get $o) (i32.const 0) (local.get $rowBytes))
        (local.set $k (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
        (local.set $end (i32.load (i32.add (local.get $offs) (i32.shl (i32.add (local.get $b) (i32.const 1)) (i32.const 2)))))
        (block $doneK
          (loop $loopK
            (br_if $doneK (i32.ge_u (local.get $k) (local.get $end)))
            (local.set $row
              (i32.add (local.get $table)
                (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes))))
            (local.set $d (i32.const 0))
            (block $doneV
              (loop $loopV
                (br_if $doneV (i32.ge_u (local.get $d) (local.get $vecBytes)))
                (v128.store (i32.add (local.get $o) (local.get $d))
                  (f32x4.add
                    (v128.load (i32.add (local.get $o) (local.get $d)))
                    (v128.load (i32.add (local.get $row) (local.get $d)))))
                (local.set $d (i32.add (local.get $d) (i32.const 16)))
                (br $loopV)))
            (block $doneS
              (loop $loopS
                (br_if $doneS (i32.ge_u (local.get $d) (local.get $rowBytes)))
                (f32.store (i32.add (local.get $o) (local.get $d))
                  (f32.add
                    (f32.load (i32.add (local.get $o) (local.get $d)))
                    (f32.load (i32.add (local.get $row) (local.get $d)))))
                (local.set $d (i32.add (local.get $d) (i32.const 4)))
                (br $loopS)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $loopK)))
        (local.set $o (i32.add (local.get $o) (local.get $rowBytes)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $loopB)))))
