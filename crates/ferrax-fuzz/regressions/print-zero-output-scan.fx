# a scan with neither carry nor ys has no outputs: it printed as `    = scan[...]`, which the
# parser did not read back (an equation needed a binder)
{ lambda ; a:f64[2] . let
    = scan[body={ lambda ; a:f64[] . let
        b:f64[] = sin a
      in () } n_consts=0 n_carry=0 length=2 reverse=false] a
    = cond[branches=({ lambda ; . let in () }, { lambda ; . let in () })] 1:i32
  in (a) }
