//! Numbers for the checks: arrays from values, seeded random arrays from a domain,
//! comparisons to a tolerance, and finite differences.

use super::Domain;
use ferrax::{Array, Aval, DType};

/// An array of an aval holding the given values (converted to its dtype).
pub fn array_from_f64(vals: &[f64], aval: &Aval) -> Array {
    let data = match aval.dtype {
        DType::F32 => ferrax::Data::F32(vals.iter().map(|&v| v as f32).collect()),
        DType::F64 => ferrax::Data::F64(vals.to_vec()),
        DType::I32 => ferrax::Data::I32(vals.iter().map(|&v| v as i32).collect()),
        DType::I64 => ferrax::Data::I64(vals.iter().map(|&v| v as i64).collect()),
        DType::Bool => ferrax::Data::Bool(vals.iter().map(|&v| v != 0.0).collect()),
    };
    Array::from_data(data, &aval.shape).expect("value count matches the aval")
}

/// Random values for an aval from a domain (seeded, so failures reproduce).
pub fn random_array(seed: u64, aval: &Aval, domain: Domain) -> Array {
    let n = aval.size();
    let raw = Array::random_normal(seed, &[n], DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let r = aval.ndim();
    let vals: Vec<f64> = raw
        .iter()
        .enumerate()
        .map(|(k, &z)| match domain {
            // matrices in the last two axes: small off the diagonal, large and spread on it
            Domain::Dominant if r >= 2 => {
                let (rows, cols) = (aval.shape[r - 2], aval.shape[r - 1]);
                let (i, j) = ((k / cols) % rows, k % cols);
                if i == j {
                    4.0 + 3.0 * i as f64 + 0.5 * z.abs()
                } else {
                    0.3 * z
                }
            }
            Domain::Dominant => z,
            Domain::Real => z,
            Domain::Positive => 0.1 + z.abs(),
            Domain::Unit => z.tanh() * 0.9,
            Domain::AboveOne => 1.1 + z.abs(),
            // Quarter-integers plus a little: away from jumps at integers and halves.
            Domain::Real2 => (z * 4.0).round() / 4.0 + 0.1,
        })
        .collect();
    let vals: Vec<f64> = match aval.dtype {
        DType::I32 | DType::I64 => vals.iter().map(|v| (v * 3.0).round()).collect(),
        DType::Bool => vals.iter().map(|v| (*v > 0.0) as u8 as f64).collect(),
        _ => vals,
    };
    array_from_f64(&vals, aval)
}

/// Random values for each of `avals` from a domain: operand `i` from seed `seed + i`.
pub fn random_args(avals: &[Aval], seed: u64, domain: Domain) -> Vec<Array> {
    avals
        .iter()
        .enumerate()
        .map(|(i, a)| random_array(seed.wrapping_add(i as u64), a, domain))
        .collect()
}

/// Whether two arrays agree to a relative tolerance (exactly, NaN = NaN, when tol = 0).
pub fn close(a: &Array, b: &Array, tol: f64) -> bool {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        return false;
    }
    a.to_f64_vec().iter().zip(b.to_f64_vec()).all(|(x, y)| {
        (x.is_nan() && y.is_nan())
            || x == &y
            || (x - y).abs() <= tol * x.abs().max(y.abs()).max(f64::MIN_POSITIVE)
    })
}

/// Central differences with one step of Richardson extrapolation: error O(h^4), so the
/// tolerance against an exact derivative can be tight. `f(eps)` evaluates the function at
/// `x + eps * t`.
pub fn richardson(f: &dyn Fn(f64) -> Vec<f64>, h: f64) -> Vec<f64> {
    let d = |h: f64| -> Vec<f64> {
        let (a, b) = (f(h), f(-h));
        a.iter().zip(&b).map(|(x, y)| (x - y) / (2.0 * h)).collect()
    };
    let (d1, d2) = (d(h), d(h / 2.0));
    d1.iter()
        .zip(&d2)
        .map(|(a, b)| (4.0 * b - a) / 3.0)
        .collect()
}

/// [`richardson`] at step `h / 2`, or `None` when it disagrees with the same at `h` or at
/// `h / 4` beyond `rtol` (see [`agree`]): a function curved so sharply at the point (a scan
/// squaring its carry, say) that the extrapolation has not converged, or whose values are so
/// large that rounding swamps the differences (the smaller step would then disagree), where
/// a disagreement would say nothing about the derivative being checked. The truncation
/// error is O(h^4), so the result's is about a fifteenth of the first disagreement.
pub fn richardson_converged(f: &dyn Fn(f64) -> Vec<f64>, h: f64, rtol: f64) -> Option<Vec<f64>> {
    let d = richardson(f, h / 2.0);
    (agree(&d, &richardson(f, h), rtol) && agree(&d, &richardson(f, h / 4.0), rtol)).then_some(d)
}

/// `x + eps * t`, elementwise, for f64 arrays (other dtypes are returned unchanged).
pub fn perturb(x: &Array, t: &Array, eps: f64) -> Array {
    if x.dtype() != DType::F64 {
        return x.clone();
    }
    let v: Vec<f64> = x
        .to_f64_vec()
        .iter()
        .zip(t.to_f64_vec())
        .map(|(a, b)| a + eps * b)
        .collect();
    Array::from_vec(v, x.shape()).unwrap()
}

/// Whether two f64 vectors agree to `rtol` relative to the larger magnitude (at least 1).
pub fn agree(a: &[f64], b: &[f64], rtol: f64) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= rtol * x.abs().max(y.abs()).max(1.0)
        })
}

/// The program run on absolute values with `sub` turned into `add` and `neg` into `abs`:
/// every intermediate of it bounds the magnitude of the corresponding intermediate of the
/// real run, so its result measures the size of the terms whose rounding errors a result
/// is subject to (a Jacobian that cancels to zero, like that of `x/x`, still has terms of
/// the size of `t/x`; `x - tanh x` iterated cancels to far below `x`).
pub fn magnitude_run(p: &ferrax::Program, args: &[Array]) -> Vec<Array> {
    let q = magnitude_program(p);
    let abs: Vec<Array> = args
        .iter()
        .map(|a| {
            if a.dtype().is_float() {
                ferrax::eval_primitive(&ferrax::Primitive::Abs, &[a]).unwrap()
            } else {
                a.clone()
            }
        })
        .collect();
    q.eval(&abs).unwrap()
}

/// `p` with `sub` turned into `add` and `neg` into `abs`, inside sub-programs too; except
/// where the value is a `pow`'s exponent (the jvp of `x^y` computes `y - 1`), whose sign
/// is not a magnitude.
pub fn magnitude_program(p: &ferrax::Program) -> ferrax::Program {
    use ferrax::Primitive as P;
    let exponents: std::collections::HashSet<ferrax::Var> = p
        .eqns
        .iter()
        .filter(|e| e.prim == P::Pow)
        .filter_map(|e| match e.inputs.get(1) {
            Some(ferrax::Atom::Var(v)) => Some(*v),
            _ => None,
        })
        .collect();
    let mut q = p.clone();
    for e in &mut q.eqns {
        if e.outs.iter().any(|v| exponents.contains(v)) {
            continue;
        }
        e.prim = match &e.prim {
            P::Sub => P::Add,
            P::Neg => P::Abs,
            other => other
                .map_subprograms(|b| Ok(magnitude_program(b)))
                .unwrap()
                .unwrap_or_else(|| other.clone()),
        };
    }
    q
}

/// The primitives whose plan kernels are not the reference evaluator's function (ferrax's
/// polynomials and vectorized loops against libm), so that a plan's values of them differ
/// from the reference's in the last bits (`math/accuracy.rs` bounds them to a few ulp).
fn kernel_differs(prim: &ferrax::Primitive) -> bool {
    use ferrax::Primitive as P;
    matches!(
        prim,
        P::Exp | P::Expm1 | P::Log | P::Logistic | P::Tanh | P::Sin | P::Cos
    )
}

/// `p` with the result of every primitive whose plan kernel differs from the reference's
/// ([`kernel_differs`]) multiplied by `1 + sign · 2^-48` (f64; `2^-20` for f32): 16 (f64)
/// or 8 (f32) ulp, more than those kernels differ by; inside sub-programs too.
pub fn nudged_program(p: &ferrax::Program, sign: f64) -> ferrax::Program {
    use ferrax::{Atom, Equation, Primitive as P, Scalar, Var};
    let mut q = p.clone();
    q.eqns.clear();
    for e in &p.eqns {
        let mut e = e.clone();
        if let Ok(Some(prim)) = e.prim.map_subprograms(|b| Ok(nudged_program(b, sign))) {
            e.prim = prim;
        }
        let out = e.outs.first().copied();
        let aval = out.map(|v| p.avals[v.index()].clone());
        let Some((out, aval)) = out.zip(aval).filter(|(_, a)| a.dtype.is_float()) else {
            q.eqns.push(e);
            continue;
        };
        if !kernel_differs(&e.prim) {
            q.eqns.push(e);
            continue;
        }
        let mut fresh = |a: ferrax::Aval| {
            q.avals.push(a);
            Var(q.avals.len() as u32 - 1)
        };
        let (exact, factor) = (fresh(aval.clone()), fresh(aval.clone()));
        let lit = match aval.dtype {
            DType::F32 => Scalar::F32(1.0 + sign as f32 * (-20f32).exp2()),
            _ => Scalar::F64(1.0 + sign * (-48f64).exp2()),
        };
        e.outs = vec![exact];
        q.eqns.push(e);
        q.eqns.push(Equation {
            prim: P::BroadcastInDim {
                shape: aval.shape.clone(),
                broadcast_dimensions: vec![],
            },
            inputs: vec![Atom::Lit(lit)],
            outs: vec![factor],
            loc: None,
        });
        q.eqns.push(Equation {
            prim: P::Mul,
            inputs: vec![Atom::Var(exact), Atom::Var(factor)],
            outs: vec![out],
            loc: None,
        });
    }
    q
}

/// The reference's outputs of `p` at `args`, and of `p` with the results of the primitives
/// whose plan kernels differ from the reference's moved up, and down, by more than they
/// differ ([`nudged_program`]): per output, per element, the least and greatest value of the
/// three (non-finite ones left out). Where a program amplifies those last-bit differences
/// itself (a loop iterating `h ← log(k h)` near h = 0.05, 20 times per step) or jumps
/// (`floor` or `tan` of an iterated `exp`), a plan's value lies in this band; elsewhere the
/// band is a few dozen ulp wide, narrower than the tolerance it is used beside.
pub fn reference_band(p: &ferrax::Program, args: &[Array]) -> Vec<(Vec<f64>, Vec<f64>)> {
    let up = nudged_program(p, 1.0);
    let down = nudged_program(p, -1.0);
    let runs: Vec<Vec<Array>> = [p, &up, &down]
        .iter()
        .filter_map(|q| q.eval(args).ok())
        .collect();
    let Some(first) = runs.first() else {
        return vec![];
    };
    (0..first.len())
        .map(|k| {
            let vals: Vec<Vec<f64>> = runs.iter().map(|r| r[k].to_f64_vec()).collect();
            (0..vals[0].len())
                .map(|i| {
                    let finite = vals.iter().map(|v| v[i]).filter(|x| x.is_finite());
                    finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                        (lo.min(x), hi.max(x))
                    })
                })
                .unzip()
        })
        .collect()
}

/// [`close_at_scale`], each element also accepted where it lies in its `band`
/// ([`reference_band`]'s) widened by the same tolerance, or where the band is wider than
/// 2^-20 of its values: the program amplifies last-bit differences there by more than 2^28
/// (`tan` of an iterated `exp` near 1e17, where one ulp is 32), so no value is more right
/// than another and nothing is compared.
pub fn close_or_in_band(
    a: &Array,
    b: &Array,
    scale: &Array,
    band: Option<&(Vec<f64>, Vec<f64>)>,
    tol: f64,
) -> bool {
    if close_at_scale(a, b, scale, tol) {
        return true;
    }
    let Some((lo, hi)) = band.filter(|(lo, _)| lo.len() == a.size()) else {
        return false;
    };
    let one = |x: f64| Array::from_vec(vec![x], &[]).unwrap();
    let (x, y, s) = (a.to_f64_vec(), b.to_f64_vec(), scale.to_f64_vec());
    (0..x.len()).all(|i| {
        let slack = tol * x[i].abs().max(s[i].abs()).max(f64::MIN_POSITIVE);
        let chaotic = hi[i] - lo[i] > (-20f64).exp2() * lo[i].abs().max(hi[i].abs());
        chaotic
            || (lo[i] - slack <= x[i] && x[i] <= hi[i] + slack)
            || close_at_scale(&one(x[i]), &one(y[i]), &one(s[i]), tol)
    })
}

/// `close` with the tolerance relative to a magnitude as well (`magnitude_run`'s): for
/// results that cancel far below the terms they are made of.
pub fn close_at_scale(a: &Array, b: &Array, scale: &Array, tol: f64) -> bool {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        return false;
    }
    let m = scale.to_f64_vec();
    a.to_f64_vec()
        .iter()
        .zip(b.to_f64_vec())
        .zip(m)
        .all(|((x, y), s)| {
            (x.is_nan() && y.is_nan())
                || *x == y
                || (x - y).abs() <= tol * x.abs().max(y.abs()).max(s.abs()).max(f64::MIN_POSITIVE)
        })
}
