# issue 10, item 2: a zero-kinded value (iota + 0) read by a residual equation is never
# computed in the transpose pass's forward sweep: "residual N is not available"
{ lambda ; a:f64[3] . let
    b:f64[3] = iota[dtype=f64 shape=(3,) dimension=0]
    c:f64[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] 0.0:f64
    d:f64[3] = add b c
    e:f64[3] = mul a d
    f:f64[] = reduce_sum[axes=(0,)] e
  in (f) }
