//! Honest memory accounting of linear maps: `kept_bytes` (everything the map keeps alive,
//! constants included) and `added_bytes` (what only the map holds), for weights captured
//! and weights passed as arguments, and in the map's printed form.

use ferrax::{linearize, DType, Program, Tensor};

const N: usize = 64;

fn weights() -> Vec<Tensor> {
    (0..3)
        .map(|i| Tensor::random_normal(i, &[N, N], DType::F64) * 0.1)
        .collect()
}

fn chain(ws: &[Tensor], x: &Tensor) -> Tensor {
    ws.iter().fold(x.clone(), |h, w| w.matmul(&h).tanh())
}

#[test]
fn captured_weights_are_kept_alive_but_not_added() {
    let ws = weights();
    let w_bytes = 3 * N * N * 8;
    let x = Tensor::random_normal(9, &[N], DType::F64);
    let (_, lin) = linearize(|x: Tensor| chain(&ws, &x), &x).unwrap();
    // what the map computed: one tanh derivative (or output) per layer, vectors of N
    assert!(
        lin.residual_bytes() <= 3 * 2 * N * 8,
        "{}",
        lin.residual_bytes()
    );
    assert!(lin.kept_bytes() >= w_bytes + lin.added_bytes(), "{lin:?}");
    assert!(lin.added_bytes() <= lin.residual_bytes(), "{lin:?}");
    assert!(lin.added_bytes() > 0);
    assert!(
        lin.added_bytes() < w_bytes / 10,
        "the weights are the caller's: {lin:?}"
    );
}

#[test]
fn weights_as_arguments_are_forwarded_not_added() {
    let ws = weights();
    let w_bytes = 3 * N * N * 8;
    let x = Tensor::random_normal(9, &[N], DType::F64);
    let (_, lin) = linearize(|(ws, x): (Vec<Tensor>, Tensor)| chain(&ws, &x), &(ws, x)).unwrap();
    // the weights are residuals (forwarded inputs), counted by residual_bytes
    assert!(lin.residual_bytes() >= w_bytes);
    assert!(lin.num_forwarded() >= 3);
    assert!(lin.kept_bytes() >= w_bytes);
    assert!(
        lin.added_bytes() < w_bytes / 10,
        "forwarded inputs add nothing: {lin:?}"
    );
}

#[test]
fn a_constant_made_while_tracing_is_added() {
    let x = Tensor::random_normal(9, &[N], DType::F64);
    let (_, lin) = linearize(
        |x: Tensor| {
            // a matrix made inside the function: nobody but the map holds it afterwards
            let m = Tensor::random_normal(3, &[N, N], DType::F64);
            m.matmul(&x)
        },
        &x,
    )
    .unwrap();
    assert!(lin.added_bytes() >= N * N * 8, "{lin:?}");
    assert_eq!(lin.kept_bytes(), lin.added_bytes(), "{lin:?}");
}

#[test]
fn the_printed_map_reports_its_memory_and_parses_back() {
    let ws = weights();
    let x = Tensor::random_normal(9, &[N], DType::F64);
    let (_, lin) = linearize(|x: Tensor| chain(&ws, &x), &x).unwrap();
    let text = lin.to_string();
    let first = text.lines().next().unwrap();
    assert!(
        first.contains(&format!(
            "keeps {} bytes alive, adds {}",
            lin.kept_bytes(),
            lin.added_bytes()
        )),
        "{first}"
    );
    // the header is a comment: the rest is the program
    let p = Program::parse(&text).unwrap();
    assert_eq!(p.to_string(), lin.program().to_string());
}

#[test]
fn a_printed_map_labels_its_residual_and_tangent_inputs() {
    let (_, j) = ferrax::linearize(
        |x: Tensor| 3.0 * x.sin() + (&x / 2.0).cos(),
        &Tensor::scalar(2.0f64),
    )
    .unwrap();
    let text = j.to_string();
    assert!(
        text.contains("# inputs: residuals a b; tangents c\n"),
        "{text}"
    );
    let t = j.transpose().unwrap().to_string();
    assert!(t.contains("# inputs: residuals a b; cotangents c\n"), "{t}");
    // the comment lines are skipped when the text is read back
    let p = ferrax::Program::parse(&text).unwrap();
    assert_eq!(p.inputs.len(), 3);
}
