# issue 10, item 7: an equation's output is registered before its operands are read, so
# `b = exp b` parses (only check rejects it)
{ lambda ; a:f64[] . let
    b:f64[] = exp b
  in (a) }
