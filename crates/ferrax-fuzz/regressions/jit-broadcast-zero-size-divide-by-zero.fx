# new: fusion::broadcast_kind divides by the operand's size, 0 here (fusion.rs:97,
# "attempt to divide by zero" in run_compiled)
{ lambda ; a:f64[0] . let
    b:f64[0,3] = broadcast_in_dim[shape=(0,3) broadcast_dimensions=(0,)] a
  in (b) }
