# linearize of nested scans whose outer loop runs i64::MAX times: the residuals stacked per
# iteration cannot exist, and linearize_program returned ill-typed programs instead of an Err
{ lambda ; a:f64[] b:i32[] . let
    c:f64[] = cond[branches=({ lambda ; a:f64[] . let
              b:f64[] = scan[body={ lambda ; a:f64[] . let
                        b:i32[] = convert_element_type[new_dtype=i32] a
                        c:f64[] = cond[branches=({ lambda ; a:f64[] . let
                                  b:f64[] = scan[body={ lambda ; a:f64[] . let
                                            b:i32[] = convert_element_type[new_dtype=i32] a
                                            c:f64[] = cond[branches=({ lambda ; a:f64[] . let
                                                      b:f64[] = scan[body={ lambda ; a:f64[] . let
                                                                b:f64[] = sin a
                                                              in (b) } n_consts=0 n_carry=1 length=131072 reverse=false] a
                                                    in (b) }, { lambda ; a:f64[] . let
                                                      b:f64[] = mul a a
                                                    in (b) })] b a
                                          in (c) } n_consts=0 n_carry=1 length=2 reverse=false] a
                                in (b) }, { lambda ; a:f64[] . let
                                  b:f64[] = mul a a
                                in (b) })] b a
                      in (c) } n_consts=0 n_carry=1 length=9223372036854775807 reverse=false] a
            in (b) }, { lambda ; a:f64[] . let
              b:f64[] = mul a a
            in (b) })] b a
  in (c) }