# An RNN over 4 steps, h' = tanh(W h + U x), and the loss sum(hs * hs) + sum(h_T),
# for h0:f64[3], xs:f64[4,2], W:f64[3,3], U:f64[3,2]. The scan's operands are its consts
# (W, U), its carry (h0) and its xs; it gives the final carry and the stacked ys (hs).
{ lambda ; a:f64[3] b:f64[4,2] c:f64[3,3] d:f64[3,2] . let
    e:f64[3] f:f64[4,3] = scan[body={ lambda ; a:f64[3,3] b:f64[3,2] c:f64[3] d:f64[2] . let
              e:f64[3] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a c
              f:f64[3] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] b d
              g:f64[3] = add e f
              h:f64[3] = tanh g
            in (h, h) } n_consts=2 n_carry=1 length=4 reverse=false] c d a b
    g:f64[4,3] = mul f f
    h:f64[] = reduce_sum[axes=(0,1)] g
    i:f64[] = reduce_sum[axes=(0,)] e
    j:f64[] = add h i
  in (j) }
