# sum(tanh(W x)) and tanh(W x), for x:f64[2] and W:f64[2,2]
{ lambda ; a:f64[2] b:f64[2,2] . let
    c:f64[2] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] b a
    d:f64[2] = tanh c
    e:f64[] = reduce_sum[axes=(0,)] d
  in (e, d) }
