# vmap over zero examples of a cond with a batched index: the guard looked for the first
# example taking each branch (argmax over an empty axis) and refused a well-typed program
{ lambda ; a:f64[] b:f64[3,2] . let
    c:f64[] d:f64[3] = scan[body={ lambda ; a:f64[] b:f64[2] . let
              c:f64[] = reduce_sum[axes=(0,)] b
              d:bool[] = gt c 0.0:f64
              e:i32[] = convert_element_type[new_dtype=i32] d
              f:f64[] = cond[branches=({ lambda ; a:f64[] b:f64[] . let
                        c:f64[] = sub a b
                      in (c) }, { lambda ; a:f64[] b:f64[] . let
                        c:f64[] = add a b
                      in (c) })] e a c
            in (f, c) } n_consts=0 n_carry=1 length=3 reverse=false] a b
  in (c) }
