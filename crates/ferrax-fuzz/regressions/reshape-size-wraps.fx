# issue 10, item 3: 2^32 * 2^32 wraps to 0, so a reshape of an empty array to 2^64 elements
# is accepted in release (panics with overflow checks)
{ lambda ; a:f64[0] . let
    b:f64[4294967296,4294967296] = reshape[new_sizes=(4294967296,4294967296)] a
  in (b) }
