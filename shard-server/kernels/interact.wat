;; DLRM's dot interaction in WebAssembly SIMD, driven by interact.ts. For each sample b the output row is the
;; bottom vector followed by the dot products of every pair of the n vectors [bottom, pooled_0, ...], lower triangle
;; row by row. The vectors lie in n regions of batch x dim floats (region i holds vector i of every sample, as the
;; caller's arrays do, so each is one copy in); rows of `width` floats are written from `out`.
;;
;; Every dot product is summed in one fixed order, whether it is computed alone or in a group of four: an f32x4
;; accumulator over the 16-byte blocks, its lanes added as (l0 + l2) + (l1 + l3), then the leftover floats one by
;; one. Only plain multiplies and adds (no fused multiply-add), so the result is the same on every machine and thread
;; and depends only on the two vectors; it differs from the JavaScript loop's (summed in double) by float rounding.
;; Four dot products of one vector with four others share its loads, and their lane sums are one transpose.
(module
  (memory (export "memory") 1)

  ;; a . c over dim floats
  (func $dot1 (param $a i32) (param $c i32) (param $dim i32) (result f32)
    (local $x v128) (local $d i32) (local $end i32) (local $s f32)
    (local.set $end (i32.shl (i32.and (local.get $dim) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $d) (local.get $end)))
        (local.set $x
          (f32x4.add (local.get $x)
            (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $d))) (v128.load (i32.add (local.get $c) (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $loop)))
    (local.set $s
      (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $x)) (f32x4.extract_lane 2 (local.get $x)))
        (f32.add (f32x4.extract_lane 1 (local.get $x)) (f32x4.extract_lane 3 (local.get $x)))))
    (call $tail (local.get $s) (local.get $a) (local.get $c) (local.get $d) (i32.shl (local.get $dim) (i32.const 2))))

  ;; s + the products of the floats at byte offsets [d, end) of a and c, one by one
  (func $tail (param $s f32) (param $a i32) (param $c i32) (param $d i32) (param $end i32) (result f32)
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $d) (local.get $end)))
        (local.set $s
          (f32.add (local.get $s) (f32.mul (f32.load (i32.add (local.get $a) (local.get $d))) (f32.load (i32.add (local.get $c) (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $loop)))
    (local.get $s))

  ;; a . c, a . (c + step), a . (c + 2 step), a . (c + 3 step) stored at p .. p + 16
  (func $dot4 (param $a i32) (param $c i32) (param $step i32) (param $dim i32) (param $p i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $va v128) (local $d i32) (local $end i32)
    (local $c1 i32) (local $c2 i32) (local $c3 i32) (local $u v128) (local $w v128)
    (local.set $c1 (i32.add (local.get $c) (local.get $step)))
    (local.set $c2 (i32.add (local.get $c1) (local.get $step)))
    (local.set $c3 (i32.add (local.get $c2) (local.get $step)))
    (local.set $end (i32.shl (i32.and (local.get $dim) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $d) (local.get $end)))
        (local.set $va (v128.load (i32.add (local.get $a) (local.get $d))))
        (local.set $x0 (f32x4.add (local.get $x0) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $c) (local.get $d))))))
        (local.set $x1 (f32x4.add (local.get $x1) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $c1) (local.get $d))))))
        (local.set $x2 (f32x4.add (local.get $x2) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $c2) (local.get $d))))))
        (local.set $x3 (f32x4.add (local.get $x3) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $c3) (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $loop)))
    ;; lane k of the result is (x_k[0] + x_k[2]) + (x_k[1] + x_k[3]), as $dot1 adds them
    ;; u = [x0[0] + x0[2], x1[0] + x1[2], x2[0] + x2[2], x3[0] + x3[2]], w likewise with lanes 1 and 3
    (local.set $u
      (f32x4.add
        (i8x16.shuffle 0 1 2 3 16 17 18 19 0 1 2 3 16 17 18 19 (local.get $x0) (local.get $x1))
        (i8x16.shuffle 8 9 10 11 24 25 26 27 8 9 10 11 24 25 26 27 (local.get $x0) (local.get $x1))))
    (local.set $w
      (f32x4.add
        (i8x16.shuffle 0 1 2 3 16 17 18 19 0 1 2 3 16 17 18 19 (local.get $x2) (local.get $x3))
        (i8x16.shuffle 8 9 10 11 24 25 26 27 8 9 10 11 24 25 26 27 (local.get $x2) (local.get $x3))))
    (local.set $va
      (f32x4.add
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (local.get $u) (local.get $w))
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.add
            (i8x16.shuffle 4 5 6 7 20 21 22 23 4 5 6 7 20 21 22 23 (local.get $x0) (local.get $x1))
            (i8x16.shuffle 12 13 14 15 28 29 30 31 12 13 14 15 28 29 30 31 (local.get $x0) (local.get $x1)))
          (f32x4.add
            (i8x16.shuffle 4 5 6 7 20 21 22 23 4 5 6 7 20 21 22 23 (local.get $x2) (local.get $x3))
            (i8x16.shuffle 12 13 14 15 28 29 30 31 12 13 14 15 28 29 30 31 (local.get $x2) (local.get $x3))))))
    (if (i32.eq (local.get $end) (i32.shl (local.get $dim) (i32.const 2)))
      (then (v128.store (local.get $p) (local.get $va)))
      (else
        (f32.store offset=0 (local.get $p)
          (call $tail (f32x4.extract_lane 0 (local.get $va)) (local.get $a) (local.get $c) (local.get $end) (i32.shl (local.get $dim) (i32.const 2))))
        (f32.store offset=4 (local.get $p)
          (call $tail (f32x4.extract_lane 1 (local.get $va)) (local.get $a) (local.get $c1) (local.get $end) (i32.shl (local.get $dim) (i32.const 2))))
        (f32.store offset=8 (local.get $p)
          (call $tail (f32x4.extract_lane 2 (local.get $va)) (local.get $a) (local.get $c2) (local.get $end) (i32.shl (local.get $dim) (i32.const 2))))
        (f32.store offset=12 (local.get $p)
          (call $tail (f32x4.extract_lane 3 (local.get $va)) (local.get $a) (local.get $c3) (local.get $end) (i32.shl (local.get $dim) (i32.const 2)))))))

  (func (export "dot") (param $vecs i32) (param $n i32) (param $batch i32) (param $dim i32) (param $out i32) (param $width i32)
    (local $b i32) (local $i i32) (local $j i32) (local $rowBytes i32) (local $region i32) (local $v i32) (local $a i32)
    (local $p i32)
    (local.set $rowBytes (i32.shl (local.get $dim) (i32.const 2)))
    (local.set $region (i32.mul (local.get $batch) (local.get $rowBytes)))
    (block $doneB
      (loop $loopB
        (br_if $doneB (i32.ge_u (local.get $b) (local.get $batch)))
        ;; this sample's vector 0 (the bottom output) starts the row
        (local.set $v (i32.add (local.get $vecs) (i32.mul (local.get $b) (local.get $rowBytes))))
        (memory.copy (local.get $out) (local.get $v) (local.get $rowBytes))
        (local.set $p (i32.add (local.get $out) (local.get $rowBytes)))
        (local.set $i (i32.const 1))
        (block $doneI
          (loop $loopI
            (br_if $doneI (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $a (i32.add (local.get $v) (i32.mul (local.get $i) (local.get $region))))
            (local.set $j (i32.const 0))
            (block $doneJ4
              (loop $loopJ4
                (br_if $doneJ4 (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $i)))
                (call $dot4 (local.get $a) (i32.add (local.get $v) (i32.mul (local.get $j) (local.get $region))) (local.get $region) (local.get $dim) (local.get $p))
                (local.set $p (i32.add (local.get $p) (i32.const 16)))
                (local.set $j (i32.add (local.get $j) (i32.const 4)))
                (br $loopJ4)))
            (block $doneJ
              (loop $loopJ
                (br_if $doneJ (i32.ge_u (local.get $j) (local.get $i)))
                (f32.store (local.get $p)
                  (call $dot1 (local.get $a) (i32.add (local.get $v) (i32.mul (local.get $j) (local.get $region))) (local.get $dim)))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $loopJ)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $loopI)))
        (local.set $out (i32.add (local.get $out) (i32.shl (local.get $width) (i32.const 2))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $loopB)))))
