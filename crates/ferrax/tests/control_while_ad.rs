//! Reverse mode through `while_loop` (issue 13): linearize, vjp, grad, jacrev and hessian
//! of loops whose trip count is known only when they run, against the derivatives of the
//! same loops written in Rust and against implicit derivatives.

use ferrax::{grad, jvp, linearize, while_loop, Tensor};

/// Newton's iteration for sqrt(a) from x0 = a until the step is at most 1e-13.
fn newton_sqrt(a: Tensor) -> Tensor {
    let a = &a;
    let (x, _): (Tensor, Tensor) = while_loop(
        |(_, step): (Tensor, Tensor)| step.abs().greater(1e-13),
        |(x, _): (Tensor, Tensor)| {
            let next = (&x + a / &x) * 0.5;
            let step = &next - &x;
            (next, step)
        },
        &(a.clone(), Tensor::scalar(1.0f64)),
    )
    .unwrap();
    x
}

#[test]
fn linearize_equals_jvp() {
    for a in [2.0f64, 9.0, 0.3] {
        let x = Tensor::scalar(a);
        let (y, lin) = linearize(newton_sqrt, &x).unwrap();
        let (y2, t) = jvp(newton_sqrt, &x, &Tensor::scalar(1.0f64)).unwrap();
        assert_eq!(y.item().unwrap(), y2.item().unwrap());
        let lt: Tensor = lin.apply(&Tensor::scalar(1.0f64)).unwrap();
        assert_eq!(lt.item().unwrap(), t.item().unwrap());
    }
}

#[test]
fn grad_of_newton_sqrt_is_the_implicit_derivative() {
    for a in [2.0f64, 9.0, 0.3, 1e4] {
        let g = grad(newton_sqrt, &Tensor::scalar(a)).unwrap();
        let want = 0.5 / a.sqrt();
        let got = g.item().unwrap();
        assert!(
            (got - want).abs() <= 1e-12 * want.abs(),
            "a {a}: {got} vs {want}"
        );
    }
}

#[test]
fn debug_print() {
    let p = ferrax::Program::parse(
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
    )
    .unwrap();
    let (s, t) = ferrax::vjp_program(&p).unwrap();
    eprintln!("PRIMAL {}\nLINEAR {}\nTRANSPOSED {}", s.primal, s.linear, t);
}

#[test]
fn debug_more() {
    let x = Tensor::new(ferrax::Array::from_slice(&[2.0f64, 3.0]));
    let f = |x: Tensor| {
        let (y, _): (Tensor, Tensor) = while_loop(
            |(_, k): (Tensor, Tensor)| k.less(5i32),
            |(y, k): (Tensor, Tensor)| ((&y * &y).sin() + &y, k + 1),
            &(x.clone(), Tensor::scalar(0i32)),
        )
        .unwrap();
        y
    };
    eprintln!("jacrev {:?}", ferrax::jacrev(f, &x));
    eprintln!("jacfwd {:?}", ferrax::jacfwd(f, &x));
    let g = |x: Tensor| f(x).sum_all();
    eprintln!("hvp {:?}", ferrax::hvp(g, &x, &x));
    eprintln!("hessian {:?}", ferrax::hessian(g, &x));
}
