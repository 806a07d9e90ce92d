# Newton's iteration for sqrt(a) from x = a, until |x*x - a| <= 1e-12 or 50 steps: a while
# loop whose trip count depends on a. Outputs: the root and the number of steps.
{ lambda ; a:f64[] . let
    b:f64[] c:i32[] = while[cond={ lambda ; a:f64[] b:f64[] c:i32[] . let
              d:f64[] = mul b b
              e:f64[] = sub d a
              f:f64[] = abs e
              g:bool[] = gt f 1e-12:f64
              h:bool[] = lt c 50:i32
              i:bool[] = select g h false:bool
            in (i) } body={ lambda ; a:f64[] b:f64[] c:i32[] . let
              d:f64[] = div a b
              e:f64[] = add b d
              f:f64[] = mul e 0.5:f64
              g:i32[] = add c 1:i32
            in (f, g) } n_cond_consts=1 n_body_consts=1 max_steps=0 checkpoints=0] a a a 0:i32
  in (b, c) }
