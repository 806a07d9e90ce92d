# issue 10, item 3: pad's shape rule adds user-given sizes without checking (wraps in
# release and type-checks as f64[1]; panics with overflow checks)
{ lambda ; a:f64[1] . let
    b:f64[1] = pad[low=(18446744073709551615,) high=(1,) interior=(0,)] a 0.0:f64
  in (b) }
