# issue 10, item 3: an input whose element count overflows usize
{ lambda ; a:f64[4294967296,4294967296] . let
    b:f64[4294967296,4294967296] = neg a
  in (b) }
