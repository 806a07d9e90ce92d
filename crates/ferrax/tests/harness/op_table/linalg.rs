//! Linear-algebra rows: `cholesky`, `triangular_solve` (left lower; right, upper,
//! transposed, unit diagonal), `solve` (and transposed), `log_abs_det`, `det_sign`, the two
//! factors of `qr`, and `eigh`'s values and vectors. Random operands are diagonally
//! dominant matrices (`Domain::Dominant`), so every factorization exists and is well
//! conditioned; the known values are small matrices worked by hand, with junk in the
//! triangle a primitive does not read.

use super::*;
use Domain::Dominant;

fn row(name: &'static str, prim: Primitive, avals: fn(DType) -> Vec<Aval>, known: Known) -> OpRow {
    let f64_ = DType::F64;
    OpRow {
        name,
        prim,
        avals,
        dtypes: FLOATS,
        domain: Dominant,
        tol: (1e-5, 1e-13),
        known: vec![known],
        rejects: vec![
            (vec![av(&[3], f64_); avals(f64_).len()], "must be a matrix"),
            (
                vec![av(&[2, 2], DType::I32); avals(f64_).len()],
                "must be f32 or f64",
            ),
        ],
        prim_at: None,
        fixed: &[],
        gen: Gen::Skip,
    }
}

fn tri(left_side: bool, lower: bool, transpose_a: bool, unit_diagonal: bool) -> Primitive {
    Primitive::TriangularSolve {
        left_side,
        lower,
        transpose_a,
        unit_diagonal,
    }
}

pub fn rows() -> Vec<OpRow> {
    use Primitive as P;
    let mut rows = vec![
        row(
            "cholesky",
            P::Cholesky,
            |d| vec![av(&[3, 3], d)],
            // the upper triangle (99) is not read
            k(
                vec![vec![4.0, 99.0, 99.0, 2.0, 5.0, 99.0, 0.0, 1.0, 3.0]],
                vec![2.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.5, 1.6583123951777],
            ),
        ),
        row(
            "triangular_solve",
            tri(true, true, false, false),
            |d| vec![av(&[2, 2], d), av(&[2, 1], d)],
            k(
                vec![vec![2.0, 99.0, 1.0, 4.0], vec![2.0, 9.0]],
                vec![1.0, 2.0],
            ),
        ),
        row(
            "triangular_solve_right_upper_transposed_unit",
            tri(false, false, true, true),
            |d| vec![av(&[2, 2], d), av(&[1, 2], d)],
            k(
                vec![vec![7.0, 3.0, 5.0, 7.0], vec![1.0, 2.0]],
                vec![-5.0, 2.0],
            ),
        ),
        row(
            "solve",
            P::Solve { transpose_a: false },
            |d| vec![av(&[2, 2], d), av(&[2, 1], d)],
            k(
                vec![vec![2.0, 1.0, 1.0, 3.0], vec![3.0, 5.0]],
                vec![0.8, 1.4],
            ),
        ),
        row(
            "solve_transposed",
            P::Solve { transpose_a: true },
            |d| vec![av(&[2, 2], d), av(&[2, 1], d)],
            k(
                vec![vec![2.0, 1.0, 0.0, 3.0], vec![2.0, 7.0]],
                vec![1.0, 2.0],
            ),
        ),
        row(
            "log_abs_det",
            P::LogAbsDet,
            |d| vec![av(&[2, 2], d)],
            k(vec![vec![2.0, 1.0, 1.0, -3.0]], vec![1.9459101490553132]),
        ),
        row(
            "det_sign",
            P::DetSign,
            |d| vec![av(&[2, 2], d)],
            k(vec![vec![2.0, 1.0, 1.0, -3.0]], vec![-1.0]),
        ),
        // an upper trapezoidal matrix is its own R (no reflection needed)
        row(
            "qr_q",
            P::QrQ,
            |d| vec![av(&[3, 2], d)],
            k(
                vec![vec![2.0, 1.0, 0.0, 3.0, 0.0, 0.0]],
                vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            ),
        ),
        row(
            "qr_r",
            P::QrR,
            |d| vec![av(&[3, 2], d)],
            k(
                vec![vec![2.0, 1.0, 0.0, 3.0, 0.0, 0.0]],
                vec![2.0, 1.0, 0.0, 3.0],
            ),
        ),
        // a wide matrix: R is upper trapezoidal
        row(
            "qr_r_wide",
            P::QrR,
            |d| vec![av(&[2, 3], d)],
            k(
                vec![vec![2.0, 1.0, 5.0, 0.0, 3.0, -1.0]],
                vec![2.0, 1.0, 5.0, 0.0, 3.0, -1.0],
            ),
        ),
        row(
            "eigh_values",
            P::EighValues,
            |d| vec![av(&[3, 3], d)],
            k(
                vec![vec![3.0, 99.0, 99.0, 0.0, 1.0, 99.0, 0.0, 0.0, 2.0]],
                vec![1.0, 2.0, 3.0],
            ),
        ),
        row(
            "eigh_vectors",
            P::EighVectors,
            |d| vec![av(&[3, 3], d)],
            k(
                vec![vec![3.0, 99.0, 99.0, 0.0, 1.0, 99.0, 0.0, 0.0, 2.0]],
                vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            ),
        ),
        // [[3, 0], [0, -2], [0, 0]]: s = (3, 2); the second pair flips so that U's column is
        // positive
        row(
            "svd_values",
            P::SvdValues,
            |d| vec![av(&[3, 2], d)],
            k(vec![vec![3.0, 0.0, 0.0, -2.0, 0.0, 0.0]], vec![3.0, 2.0]),
        ),
        row(
            "svd_u",
            P::SvdU,
            |d| vec![av(&[3, 2], d)],
            k(
                vec![vec![3.0, 0.0, 0.0, -2.0, 0.0, 0.0]],
                vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            ),
        ),
        row(
            "svd_vt",
            P::SvdVt,
            |d| vec![av(&[2, 3], d)],
            k(
                vec![vec![3.0, 0.0, 0.0, 0.0, -2.0, 0.0]],
                vec![1.0, 0.0, 0.0, 0.0, -1.0, 0.0],
            ),
        ),
    ];
    // what is specific to each: a square matrix, and a right-hand side that fits; the
    // eigensolver iterates, so its values are smooth only to about 1e-14 and finite
    // differences of them to about 1e-10
    for r in rows.iter_mut() {
        if r.name.starts_with("eigh") || r.name.starts_with("svd") {
            r.tol = (1e-5, 1e-8);
        }
        match r.name {
            "cholesky" | "log_abs_det" | "eigh_values" => r
                .rejects
                .push((vec![av(&[2, 3], DType::F64)], "must be square")),
            "solve" | "triangular_solve" => r.rejects.push((
                vec![av(&[2, 2], DType::F64), av(&[3, 1], DType::F64)],
                "must have 2 rows",
            )),
            _ => {}
        }
    }
    rows
}
