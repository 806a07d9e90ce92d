# 2^40 iterations whose stacked ys (8 TiB) cannot fit: eval and jit must refuse before the
# loop runs (an error at once, not a hang); jvp, vmap and linearize must not run it either
{ lambda ; a:f64[] . let
    b:f64[] c:f64[1099511627776] = scan[body={ lambda ; x:f64[] . let
        y:f64[] = mul x 0.5:f64
      in (y, y) } n_consts=0 n_carry=1 length=1099511627776 reverse=true] a
  in (b, c) }
