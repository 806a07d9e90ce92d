# new: vmap of `pad` with a batched padding value builds a `mul`, which bool refuses
# ("operands must be numeric, got bool[..]"): vmap_program fails on a well-typed program
{ lambda ; a:bool[] . let
    b:bool[] = pad[low=() high=() interior=()] a a
  in (b) }
