# new: transpose_program treats a bool program as linear (slice is structural); the
# cotangents of the output used twice must be added, `add` refuses bool, and
# transpose.rs panics ("cotangents did not fail")
{ lambda ; a:bool[4] . let
    b:bool[1] = slice[start=(2,) limit=(3,) strides=(3,)] a
  in (b, b) }
