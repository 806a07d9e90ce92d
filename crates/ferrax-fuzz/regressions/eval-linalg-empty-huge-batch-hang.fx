# new: a factorization of 2^40 empty matrices looped over them (no work, but hours of it),
# and faer's eigensolver panicked on a 0 × 0 matrix (an overflow)
{ lambda ; a:f32[1099511627776,0,4] b:f64[0,0] . let
    c:f32[1099511627776,0,4] = qr_r a
    d:f64[0] = eigh_values b
    e:f64[0,0] = eigh_vectors b
    f:f64[] = log_abs_det b
  in (c, d, e, f) }
