# A piecewise function of x:f64[] with a weight w:f64[], switched on floor(x); the index is
# clamped to the branches, so x < 1 takes the first piece and x >= 2 the last:
#   x < 1: w * sin(x)      1 <= x < 2: x^2      x >= 2: w * x + 1
{ lambda ; a:f64[] b:f64[] . let
    c:f64[] = floor a
    d:i32[] = convert_element_type[new_dtype=i32] c
    e:f64[] = cond[branches=({ lambda ; a:f64[] b:f64[] . let
              c:f64[] = sin a
              d:f64[] = mul b c
            in (d) }, { lambda ; a:f64[] b:f64[] . let
              c:f64[] = integer_pow[y=2] a
            in (c) }, { lambda ; a:f64[] b:f64[] . let
              c:f64[] = mul b a
              d:f64[] = add c 1.0:f64
            in (d) })] d a b
  in (e) }
