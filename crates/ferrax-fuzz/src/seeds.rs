//! Hand-written seed texts for the `programs` target.
//!
//! At least one valid program per primitive (every name of `ferrax::PRIMITIVE_NAMES`, with
//! each parameter in the syntax of `docs/program-text.md`), the shapes that matter (scalars,
//! zero-sized dimensions, constants, literals of every dtype, comments), and the programs
//! of issue 10's reproductions. The mutators start from these and from the printed forms of
//! random programs (`gen`).

/// The seed corpus. A unit test holds that every text parses and that every primitive
/// appears.
pub const SEEDS: &[&str] = &[
    // unary float, each on a vector
    "{ lambda ; a:f64[3] . let
    b:f64[3] = sin a
    c:f64[3] = cos b
    d:f64[3] = tan c
    e:f64[3] = exp d
    f:f64[3] = log e
    g:f64[3] = log1p f
    h:f64[3] = expm1 g
  in (h) }",
    "{ lambda ; a:f32[2,2] . let
    b:f32[2,2] = tanh a
    c:f32[2,2] = logistic b
    d:f32[2,2] = sqrt c
    e:f32[2,2] = rsqrt d
    f:f32[2,2] = floor e
    g:f32[2,2] = ceil f
    h:f32[2,2] = round g
    i:f32[2,2] = erf h
  in (i, a) }",
    // numeric unary, integer_pow, on integers and floats
    "{ lambda ; a:i32[4] b:f64[] . let
    c:i32[4] = neg a
    d:i32[4] = abs c
    e:i32[4] = sign d
    f:i32[4] = integer_pow[y=3] e
    g:f64[] = integer_pow[y=-2] b
  in (f, g) }",
    // binary arithmetic with literals of every dtype
    "{ lambda ; a:f64[] b:i64[] c:f32[2] . let
    d:f64[] = add a 1.5:f64
    e:f64[] = sub 2.0:f64 d
    f:f64[] = mul e a
    g:f64[] = div f 0.0:f64
    h:f64[] = pow a 2.5:f64
    i:f64[] = max h nan:f64
    j:f64[] = min i -inf:f64
    k:f64[] = atan2 j a
    l:i64[] = div b 0:i64
    m:i64[] = mul l -9223372036854775808:i64
    n:f32[2] = add c c
  in (k, m, n) }",
    // comparisons and select
    "{ lambda ; a:f64[3] b:f64[3] p:bool[] . let
    c:bool[3] = eq a b
    d:bool[3] = ne a b
    e:bool[3] = lt a b
    f:bool[3] = le a b
    g:bool[3] = gt a b
    h:bool[3] = ge a b
    i:f64[3] = select c a b
    j:bool[] = eq p true:bool
  in (i, d, e, f, g, h, j) }",
    // conversions
    "{ lambda ; a:f64[2,3] . let
    b:i32[2,3] = convert_element_type[new_dtype=i32] a
    c:bool[2,3] = convert_element_type[new_dtype=bool] b
    d:f32[2,3] = convert_element_type[new_dtype=f32] c
    e:i64[2,3] = convert_element_type[new_dtype=i64] d
  in (e) }",
    // reductions and argmax
    "{ lambda ; a:f64[2,3,4] . let
    b:f64[3] = reduce_sum[axes=(0,2)] a
    c:f64[2,4] = reduce_max[axes=(1,)] a
    d:f64[] = reduce_min[axes=(0,1,2)] a
    e:i32[2,4] = argmax[axis=1 index_dtype=i32] a
    f:i64[3,4] = argmax[axis=0 index_dtype=i64] a
  in (b, c, d, e, f) }",
    // shape operations
    "{ lambda ; a:f64[3] b:f64[2,1,3] . let
    c:f64[2,3] = broadcast_in_dim[shape=(2,3) broadcast_dimensions=(1,)] a
    d:f64[3,2] = transpose[permutation=(1,0)] c
    e:f64[6] = reshape[new_sizes=(6,)] d
    f:f64[2,3] = squeeze[dimensions=(1,)] b
    g:f64[1,2,3,1] = expand_dims[dimensions=(0,3)] f
    h:f64[2] = slice[start=(1,) limit=(6,) strides=(3,)] e
    i:f64[9] = pad[low=(1,) high=(2,) interior=(4,)] h 0.0:f64
    j:f64[12] = concatenate[dimension=0] i a
    k:f64[12] = rev[dimensions=(0,)] j
  in (k, g) }",
    // iota, dot_general, cumsum
    "{ lambda ; a:f64[2,3] b:f64[3,4] c:f64[5,2,3] d:f64[5,3] . let
    e:f64[2,4] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a b
    f:f64[5,2] = dot_general[lhs_contracting=(2,) rhs_contracting=(1,) lhs_batch=(0,) rhs_batch=(0,)] c d
    g:i32[2,3] = iota[dtype=i32 shape=(2,3) dimension=1]
    h:f64[2,4] = cumsum[axis=1 reverse=true] e
    i:f64[5,2] = cumsum[axis=0 reverse=false] f
  in (h, i, g) }",
    // zero-sized dimensions everywhere
    "{ lambda ; a:f64[0,3] b:f64[0] . let
    c:f64[3] = reduce_sum[axes=(0,)] a
    d:f64[3] = reduce_max[axes=(0,)] a
    e:f64[3,0] = transpose[permutation=(1,0)] a
    f:f64[0] = cumsum[axis=0 reverse=false] b
    g:f64[2] = pad[low=(1,) high=(1,) interior=(5,)] b 1.0:f64
    h:f64[0,3] = concatenate[dimension=0] a a
    i:f64[0,0] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a e
  in (c, d, f, g, h, i) }",
    // constants, comments, literal outputs, no inputs
    "{ lambda c:f64[3] = [1.0, 2.0, 3.0] d:i32[] = [7] ; . let # comment
    e:f64[3] = mul c c # squares
    f:i32[] = add d 1:i32
  in (e, f, 2.5:f64, true:bool) }",
    "{ lambda ; . let
  in () }",
    "{ lambda ; a:bool[2] . let
    b:bool[4] = pad[low=(1,) high=(1,) interior=(0,)] a false:bool
    c:bool[4] = rev[dimensions=(0,)] b
  in (c) }",
    // control flow: cond with two branches over one operand
    "{ lambda ; a:i32[] b:f64[3] . let
    c:f64[3] = cond[branches=({ lambda ; a:f64[3] . let
        b:f64[3] = sin a
      in (b) }, { lambda ; a:f64[3] . let
        b:f64[3] = neg a
      in (b) })] a b
  in (c) }",
    // a switch of three branches with two outputs, one branch holding a constant, one
    // passing its operands through
    "{ lambda ; i:i32[] x:f64[] y:i32[2] . let
    a:f64[] b:i32[2] = cond[branches=(
      { lambda ; x:f64[] y:i32[2] . let in (x, y) },
      { lambda ; x:f64[] y:i32[2] . let z:f64[] = mul x x w:i32[2] = neg y in (z, w) },
      { lambda c:i32[2] = [1, 2] ; x:f64[] y:i32[2] . let z:f64[] = exp x in (z, c) })] i x y
  in (a, b) }",
    // a cond without operands, a literal index, literal outputs
    "{ lambda ; . let
    a:f64[] = cond[branches=({ lambda ; . let in (1.0:f64) }, { lambda ; . let in (2.0:f64) })] 7:i32
    b:bool[] = cond[branches=({ lambda ; . let in (true:bool) },)] -2147483648:i32
  in (a, b) }",
    // an RNN: one const (the weights), one carry, one xs
    "{ lambda ; w:f64[3,3] h:f64[3] xs:f64[5,3] . let
    hf:f64[3] hs:f64[5,3] = scan[body={ lambda ; w:f64[3,3] h:f64[3] x:f64[3] . let
        a:f64[3] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] w h
        b:f64[3] = add a x
        c:f64[3] = tanh b
      in (c, c) } n_consts=1 n_carry=1 length=5 reverse=false] w h xs
  in (hf, hs) }",
    // a while loop: Newton's iteration for sqrt(a), at most 30 steps (a counter carry)
    "{ lambda ; a:f64[] . let
    x:f64[] k:i32[] = while[cond={ lambda ; x:f64[] k:i32[] . let
        c:bool[] = lt k 30:i32
      in (c) } body={ lambda ; a:f64[] x:f64[] k:i32[] . let
        q:f64[] = div a x
        s:f64[] = add x q
        y:f64[] = mul s 0.5:f64
        j:i32[] = add k 1:i32
      in (y, j) } n_cond_consts=0 n_body_consts=1 max_steps=1000 checkpoints=2] a 1.0:f64 0:i32
  in (x, k) }",
    // the linear part of that loop, forward, and its transpose (two carries kept at once)
    "{ lambda ; a:f64[] t:f64[] . let
    d:f64[] = while_linear[body={ lambda ; a:f64[] b:f64[] c:i32[] . let
        d:f64[] = div a b
        e:f64[] = add b d
        f:f64[] = mul e 0.5:f64
        g:i32[] = add c 1:i32
      in (f, g) } step={ lambda ; a:f64[] b:f64[] c:i32[] d:f64[] e:f64[] . let
        f:f64[] = div a b
        g:f64[] = div d b
        h:f64[] = div f b
        i:f64[] = neg h
        j:f64[] = mul e i
        k:f64[] = add g j
        m:f64[] = add e k
        o:f64[] = mul m 0.5:f64
      in (o) } n_consts=1 n_lin_consts=1 transposed=false checkpoints=0] a 6:i64 1.0:f64 0:i32 t 0.0:f64
  in (d) }",
    "{ lambda ; a:f64[] c:f64[] . let
    e:f64[] f:f64[] = while_linear[body={ lambda ; a:f64[] b:f64[] c:i32[] . let
        d:f64[] = div a b
        e:f64[] = add b d
        f:f64[] = mul e 0.5:f64
        g:i32[] = add c 1:i32
      in (f, g) } step={ lambda ; a:f64[] b:f64[] c:i32[] d:f64[] . let
        e:f64[] = div a b
        f:f64[] = div e b
        g:f64[] = neg f
        h:f64[] = mul d 0.5:f64
        i:f64[] = mul h g
        j:f64[] = add h i
        k:f64[] = div h b
      in (k, j) } n_consts=1 n_lin_consts=1 transposed=true checkpoints=2] a 9:i64 1.0:f64 0:i32 c
  in (e, f) }",
    // indexing: an embedding lookup and its scatter, a batched gather that drops, a set and
    // a max with repeated and out-of-range indices, dynamic slices with clamped starts
    "{ lambda ; t:f64[5,3] i:i32[4] . let
    a:f64[4,3] = gather[axis=0 batch=0 mode=clip] t i
    b:f64[5,3] = scatter_add[axis=0 batch=0 mode=clip] t i a
    c:f64[5,3] = scatter[axis=0 batch=0 mode=fill combine=set] b i a
    d:f64[5,3] = scatter[axis=0 batch=0 mode=fill combine=max] c i a
    e:f64[] = reduce_sum[axes=(0,1)] d
  in (e) }",
    "{ lambda ; x:f32[2,3] i:i64[2,2] . let
    a:f32[2,2] = gather[axis=1 batch=1 mode=fill] x i
    b:f32[2,3] = scatter[axis=1 batch=1 mode=clip combine=mul] x i a
  in (a, b) }",
    "{ lambda ; x:f64[3,4] u:f64[2,2] s:i32[] . let
    a:f64[2,3] = dynamic_slice[sizes=(2,3)] x s -7:i32
    b:f64[3,4] = dynamic_update_slice x u s 9:i64
  in (a, b) }",
    // the jax.numpy additions: inverse trigonometry, rem (an integer one by zero), argmin,
    // a product with a zero, argsort with ties
    "{ lambda ; x:f64[4] n:i32[3] . let
    a:f64[4] = asin x
    b:f64[4] = acos a
    c:f64[4] = atan b
    d:f64[4] = asinh c
    e:f64[4] = acosh d
    f:f64[4] = atanh e
    z:f64[4] = broadcast_in_dim[shape=(4,) broadcast_dimensions=()] 0.75:f64
    g:f64[4] = rem f z
    y:i32[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] 0:i32
    h:i32[3] = rem n y
    i:i64[] = argmin[axis=0 index_dtype=i64] g
    j:f64[] = reduce_prod[axes=(0,)] g
    k:i32[3] = argsort[axis=0 index_dtype=i32] h
  in (j, i, k) }",
    // linear algebra: a Cholesky solve and log-determinant, a batched QR, eigh, SVD, LU solve
    "{ lambda ; a:f64[3,3] b:f64[3,2] c:f32[2,4,3] . let
    l:f64[3,3] = cholesky a
    y:f64[3,2] = triangular_solve[left_side=true lower=true transpose_a=false unit_diagonal=false] l b
    x:f64[3,2] = triangular_solve[left_side=true lower=true transpose_a=true unit_diagonal=false] l y
    d:f64[] = log_abs_det a
    s:f64[] = det_sign a
    q:f32[2,4,3] = qr_q c
    r:f32[2,3,3] = qr_r c
    w:f64[3] = eigh_values a
    v:f64[3,3] = eigh_vectors a
    sv:f32[2,3] = svd_values c
    u:f32[2,4,3] = svd_u c
    vt:f32[2,3,3] = svd_vt c
    z:f64[3,2] = solve[transpose_a=true] a b
  in (x, d, s, q, r, w, v, sv, u, vt, z) }",
    // a key split in two, each encrypting counters
    "{ lambda ; k:i32[2] . let
    a:i32[2,2] = broadcast_in_dim[shape=(2,2) broadcast_dimensions=(1,)] k
    b:i32[2,2] = iota[dtype=i32 shape=(2,2) dimension=0]
    c:i32[2,2] = threefry2x32 a b
  in (c) }",
    // stop_gradient: a factor the derivative does not see
    "{ lambda ; x:f64[3] . let
    a:f64[3] = stop_gradient x
    b:f64[3] = mul a x
    c:f64[] = reduce_sum[axes=(0,)] b
  in (c) }",
    // a checkpoint storing its matrix product only, with a named value inside
    "{ lambda ; w:f64[3,3] x:f64[3] . let
    y:f64[3] s:f64[] = checkpoint[body={ lambda ; w:f64[3,3] x:f64[3] . let
        a:f64[3] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] w x
        b:f64[3] = tanh a
        c:f64[3] = checkpoint_name[name=h1] b
        d:f64[] = reduce_sum[axes=(0,)] c
      in (c, d) } policy=dots] w x
    z:f64[3] = checkpoint[body={ lambda ; y:f64[3] . let
        e:f64[3] = sin y
      in (e) } policy=(h1,h2)] y
    n:f64[3] = checkpoint_name[name=h2] z
  in (n, s) }",
    // a custom_jvp (sin with its rule), a custom_vjp with an integer argument, and the
    // custom_lin that linearizing a custom_vjp leaves (its transpose is the vjp's bwd)
    "{ lambda ; a:f64[2] . let
    b:f64[2] = custom_jvp[body={ lambda ; a:f64[2] . let
        b:f64[2] = sin a
      in (b) } rule={ lambda ; a:f64[2] b:f64[2] . let
        c:f64[2] = sin a
        d:f64[2] = cos a
        e:f64[2] = mul b d
      in (c, e) } n_args=1] a
  in (b) }",
    "{ lambda ; a:f64[2] b:i32[1] . let
    c:f64[2] d:i32[1] = custom_vjp[body={ lambda ; a:f64[2] b:i32[1] . let
        c:f64[2] = exp a
      in (c, b) } fwd={ lambda ; a:f64[2] b:i32[1] . let
        c:f64[2] = exp a
        d:f64[2] = exp a
      in (c, b, d) } bwd={ lambda ; a:f64[2] b:f64[2] c:i32[1] d:f64[2] . let
        f:f64[2] = mul d a
      in (f) } tangent={ lambda ; a:f64[2] b:f64[2] c:i32[1] d:f64[2] . let
        e:f64[2] = exp b
        f:f64[2] = mul d e
      in (f) } n_args=2] a b
  in (c, d) }",
    "{ lambda ; a:f64[2] . let
    c:f64[2] = cos a
    e:f64[2] = broadcast_in_dim[shape=(2,) broadcast_dimensions=()] 1.0:f64
    f:f64[2] = custom_lin[forward={ lambda ; a:f64[2] b:f64[2] c:f64[2] . let
        d:f64[2] = mul c a
      in (d) } transpose={ lambda ; a:f64[2] b:f64[2] c:f64[2] . let
        d:f64[2] = mul c a
      in (d) } n_nonlin=2] c a e
  in (f) }",
    // a named_map over three members: member-local work around every collective
    "{ lambda ; a:f64[3,6] . let
    b:f64[3,6] c:f64[3,3,6] d:f64[3,6] = named_map[body={ lambda ; x:f64[6] . let
        s:f64[6] = psum[axis_name=i axis_size=3] x
        m:f64[6] = pmean[axis_name=i axis_size=3] x
        h:f64[6] = pmax[axis_name=i axis_size=3] x
        l:f64[6] = pmin[axis_name=i axis_size=3] x
        g:f64[3,6] = all_gather[axis_name=i axis_size=3 axis=0] x
        y:f64[3,6] = sin g
        r:f64[6] = psum_scatter[axis_name=i axis_size=3 axis=0] y
        p:f64[6] = ppermute[axis_name=i axis_size=3 src=(0,1,2) dst=(1,2,0)] r
        t:f64[6] = all_to_all[axis_name=i axis_size=3 split_axis=0 concat_axis=0] p
        k:i32[] = axis_index[axis_name=i axis_size=3]
        f:f64[] = convert_element_type[new_dtype=f64] k
        u:f64[6] = broadcast_in_dim[shape=(6,) broadcast_dimensions=()] f
        v:f64[6] = mul t u
        w:f64[6] = add s m
        z:f64[6] = sub h l
        q:f64[6] = mul w z
        o:f64[6] = add q v
      in (o, g, m) } axis_name=i axis_size=3] a
  in (b, c, d) }",
    // a reverse scan without xs: two carries (one an integer counter), one ys
    "{ lambda ; a:f64[] . let
    b:f64[] c:i32[] d:f64[4] = scan[body={ lambda ; x:f64[] i:i32[] . let
        y:f64[] = mul x 2.0:f64
        j:i32[] = add i 1:i32
      in (y, j, x) } n_consts=0 n_carry=2 length=4 reverse=true] a 0:i32
  in (b, c, d) }",
    // a cond inside a scan, the index made from a comparison
    "{ lambda ; a:f64[] xs:f64[3,2] . let
    b:f64[] ys:f64[3] = scan[body={ lambda ; c:f64[] x:f64[2] . let
        s:f64[] = reduce_sum[axes=(0,)] x
        p:bool[] = gt s 0.0:f64
        i:i32[] = convert_element_type[new_dtype=i32] p
        d:f64[] = cond[branches=({ lambda ; c:f64[] s:f64[] . let
            e:f64[] = sub c s
          in (e) }, { lambda ; c:f64[] s:f64[] . let
            e:f64[] = add c s
          in (e) })] i c s
      in (d, s) } n_consts=0 n_carry=1 length=3 reverse=false] a xs
  in (b, ys) }",
    // a scan of length 0 over empty xs, and a scan inside a scan
    "{ lambda ; a:f64[2] xs:f64[0,2] . let
    b:f64[2] ys:f64[0,2] = scan[body={ lambda ; c:f64[2] x:f64[2] . let
        d:f64[2] = add c x
      in (d, d) } n_consts=0 n_carry=1 length=0 reverse=false] a xs
    e:f64[2] = scan[body={ lambda ; c:f64[2] . let
        f:f64[2] = scan[body={ lambda ; g:f64[2] . let
            h:f64[2] = sin g
          in (h) } n_consts=0 n_carry=1 length=3 reverse=false] c
      in (f) } n_consts=0 n_carry=1 length=2 reverse=true] b
  in (e, ys) }",
    // a loop without carry: only ys (a map over the rows), and a const with no carry
    "{ lambda ; k:f64[] xs:i64[3,2] . let
    ys:i64[3] zs:f64[3] = scan[body={ lambda ; k:f64[] x:i64[2] . let
        s:i64[] = reduce_max[axes=(0,)] x
      in (s, k) } n_consts=1 n_carry=0 length=3 reverse=false] k xs
  in (ys, zs) }",
    // a long loop whose stacked ys cannot fit: evaluation must refuse it before looping
    "{ lambda ; a:f64[] . let
    b:f64[] c:f64[1099511627776] = scan[body={ lambda ; x:f64[] . let
        y:f64[] = add x 1.0:f64
      in (y, y) } n_consts=0 n_carry=1 length=1099511627776 reverse=false] a
  in (b, c) }",
    // scans and conds nested twelve deep, alternating (every pass recurses through them)
    "{ lambda ; x:f64[] . let i:i32[] = convert_element_type[new_dtype=i32] x y:f64[] = cond[branches=({ lambda ; x:f64[] . let y:f64[] = scan[body={ lambda ; x:f64[] . let i:i32[] = convert_element_type[new_dtype=i32] x y:f64[] = cond[branches=({ lambda ; x:f64[] . let y:f64[] = scan[body={ lambda ; x:f64[] . let i:i32[] = convert_element_type[new_dtype=i32] x y:f64[] = cond[branches=({ lambda ; x:f64[] . let y:f64[] = scan[body={ lambda ; x:f64[] . let i:i32[] = convert_element_type[new_dtype=i32] x y:f64[] = cond[branches=({ lambda ; x:f64[] . let y:f64[] = scan[body={ lambda ; x:f64[] . let i:i32[] = convert_element_type[new_dtype=i32] x y:f64[] = cond[branches=({ lambda ; x:f64[] . let y:f64[] = scan[body={ lambda ; x:f64[] . let i:i32[] = convert_element_type[new_dtype=i32] x y:f64[] = cond[branches=({ lambda ; x:f64[] . let y:f64[] = scan[body={ lambda ; x:f64[] . let y:f64[] = sin x in (y) } n_consts=0 n_carry=1 length=2 reverse=false] x in (y) }, { lambda ; x:f64[] . let z:f64[] = mul x x in (z) })] i x in (y) } n_consts=0 n_carry=1 length=2 reverse=false] x in (y) }, { lambda ; x:f64[] . let z:f64[] = mul x x in (z) })] i x in (y) } n_consts=0 n_carry=1 length=2 reverse=false] x in (y) }, { lambda ; x:f64[] . let z:f64[] = mul x x in (z) })] i x in (y) } n_consts=0 n_carry=1 length=2 reverse=false] x in (y) }, { lambda ; x:f64[] . let z:f64[] = mul x x in (z) })] i x in (y) } n_consts=0 n_carry=1 length=2 reverse=false] x in (y) }, { lambda ; x:f64[] . let z:f64[] = mul x x in (z) })] i x in (y) } n_consts=0 n_carry=1 length=2 reverse=false] x in (y) }, { lambda ; x:f64[] . let z:f64[] = mul x x in (z) })] i x in (y) }",
    // issue 10, item 1: a literal zero in a linear position
    "{ lambda ; a:f64[] . let
    b:f64[] = mul a 0.0:f64
  in (b) }",
    "{ lambda ; a:f64[3] . let
    b:f64[3] = integer_pow[y=2] a
    c:f64[] = reduce_sum[axes=(0,)] b
    d:f64[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] 0.0:f64
    e:f64[3] = mul d a
    f:f64[] = reduce_sum[axes=(0,)] e
    g:f64[] = add c f
  in (g) }",
    // issue 10, item 2: a constant made inside the function read by a residual equation
    "{ lambda ; a:f64[3] . let
    b:f64[3] = iota[dtype=f64 shape=(3,) dimension=0]
    c:f64[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] 0.0:f64
    d:f64[3] = add b c
    e:f64[3] = mul a d
    f:f64[] = reduce_sum[axes=(0,)] e
  in (f) }",
    "{ lambda ; a:f64[3] . let
    b:f64[3] = iota[dtype=f64 shape=(3,) dimension=0]
    c:f64[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] 0.0:f64
    d:bool[3] = gt b c
    e:f64[3] = select d a c
    f:f64[] = reduce_sum[axes=(0,)] e
  in (f) }",
    // issue 10, item 3: sizes that overflow
    "{ lambda ; a:f64[1] . let
    b:f64[2] = pad[low=(1,) high=(0,) interior=(0,)] a 0.0:f64
  in (b) }",
    // issue 10, item 10: max/min with NaN
    "{ lambda ; a:f64[4] b:f64[4] . let
    c:f64[4] = max a b
    d:f64[] = reduce_max[axes=(0,)] c
    e:f64[] = min d nan:f64
  in (c, e) }",
    "{ lambda ; a:f64[4] . let
    b:f64[4] = min a a
    c:f64[4] = broadcast_in_dim[shape=(4,) broadcast_dimensions=()] 1.0:f64
    d:f64[4] = max b c
  in (d) }",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_parses_and_every_primitive_appears() {
        // every equation, nested ones included (a collective lives in a named_map's body)
        fn names(p: &ferrax::Program, seen: &mut std::collections::HashSet<&'static str>) {
            for e in &p.eqns {
                seen.insert(e.prim.name());
                for s in e.prim.subprograms() {
                    names(s, seen);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for s in SEEDS {
            let p = ferrax::Program::parse(s).unwrap_or_else(|e| panic!("{e}\n{s}"));
            names(&p, &mut seen);
        }
        for name in ferrax::PRIMITIVE_NAMES {
            assert!(seen.contains(name), "no seed uses `{name}`");
        }
    }
}
