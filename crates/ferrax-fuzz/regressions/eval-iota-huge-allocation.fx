# issue 10, item 4: evaluating an iota of 2^40 elements aborts the process (allocation
# failure) instead of returning an error
{ lambda ; . let
    a:f64[1099511627776] = iota[dtype=f64 shape=(1099511627776,) dimension=0]
  in (a) }
