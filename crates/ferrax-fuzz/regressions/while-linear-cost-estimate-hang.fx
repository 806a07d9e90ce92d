# issue 13: a while_linear with a huge literal trip count and two checkpoints; the fuzz
# driver's cost estimate itself took quadratic time in the count (a hang)
{ lambda ; e:f64[] d:f64[] . let
    i:f64[] f:f64[] = while_linear[body={ lambda ; e:f64[] b:f64[] d:i32[] . let
        c:f64[] = div e b
        i:f64[] = add b c
        f:f64[] = mul i 0.5:f64
        g:i32[] = add d 1:i32
      in (f, g) } step={ lambda ; e:f64[] b:f64[] d:i32[] c:f64[] . let
        i:f64[] = div e b
        f:f64[] = div i b
        g:f64[] = neg f
        h:f64[] = mul c 0.5:f64
        a:f64[] = mul h g
        j:f64[] = add h a
        k:f64[] = div h b
      in (k, j) } n_consts=1 n_lin_consts=1 transposed=true checkpoints=2] e 2147483647:i64 1.0:f64 0:i32 d
  in (i, f) }
