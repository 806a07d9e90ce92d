# new: reduce_sum over no axes turns -0.0 into +0.0 in eval (the sum starts from +0.0),
# while optimize rewrites it to the identity: atan2 shows the sign (pi vs -pi), so the
# optimized program computes another value (optimize:eval-vs-eval)
{ lambda ; a:f64[] . let
    b:f64[] = sub a a
    c:f64[] = neg b
    d:f64[] = reduce_sum[axes=()] c
    e:f64[] = atan2 d -1.0:f64
  in (e) }
