# issue 10, item 2: where_(arange(3) > 0, x, 0.0)
{ lambda ; a:f64[3] . let
    b:f64[3] = iota[dtype=f64 shape=(3,) dimension=0]
    c:f64[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] 0.0:f64
    d:bool[3] = gt b c
    e:f64[3] = select d a c
    f:f64[] = reduce_sum[axes=(0,)] e
  in (f) }
