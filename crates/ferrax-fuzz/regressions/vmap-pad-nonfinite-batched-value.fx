# new: vmap of `pad` with a batched padding value computes padded + mask * value, so a
# non-finite value (here 1 / (b - b) = inf) turns the operand's elements into NaN
# (0 * inf); the batched program differs from the program example by example
{ lambda ; a:f64[3] b:f64[] . let
    c:f64[] = sub b b
    d:f64[] = integer_pow[y=-1] c
    e:f64[5] = pad[low=(1,) high=(1,) interior=(0,)] a d
  in (e) }
