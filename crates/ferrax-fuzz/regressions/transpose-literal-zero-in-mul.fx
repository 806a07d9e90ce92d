# issue 10, item 1: a literal zero in a linear position; vjp, grad and transposing the
# linear program panic at transpose.rs ("the linearity checker guarantees a residual operand")
{ lambda ; a:f64[] . let
    b:f64[] = mul a 0.0:f64
  in (b) }
