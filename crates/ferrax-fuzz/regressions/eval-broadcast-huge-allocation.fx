# issue 10, item 4: a broadcast to 2^40 elements
{ lambda ; a:f64[] . let
    b:f64[1048576,1048576] = broadcast_in_dim[shape=(1048576,1048576) broadcast_dimensions=()] a
  in (b) }
