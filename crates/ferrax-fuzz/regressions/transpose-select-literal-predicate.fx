# issue 10, item 1 (same place): a literal predicate of `select` read by the transpose rule
{ lambda ; a:f32[] . let
    b:f32[] = select false:bool a a
  in (b) }
