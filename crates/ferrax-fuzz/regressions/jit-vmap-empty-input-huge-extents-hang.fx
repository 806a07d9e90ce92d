# new: run_compiled of this program batched by vmap (job seed 1: an empty input with
# extents 2^40 x 4 x ...) does not return: a hang in vmap:eval:jit
{ lambda ; a:f32[4] b:f32[1099511627776,4,0] . let
  in (a) }
