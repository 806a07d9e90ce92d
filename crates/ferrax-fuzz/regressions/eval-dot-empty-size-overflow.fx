# issue 10, item 3: dot_general of empty operands whose free extents multiply past usize:
# eval.rs multiplies sizes unchecked
{ lambda ; a:f64[4294967296,0] . let
    b:f64[4294967296,4294967296] = dot_general[lhs_contracting=(1,) rhs_contracting=(1,) lhs_batch=() rhs_batch=()] a a
  in (b) }
