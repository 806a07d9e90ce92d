# new (like issue 10, item 3): cumsum over an empty array with a 2^32 extent loops over the
# extent (no work, but minutes of it): a hang in eval
{ lambda ; a:f64[0,4294967296] . let
    b:f64[0,4294967296] = cumsum[axis=0 reverse=true] a
  in (b) }
