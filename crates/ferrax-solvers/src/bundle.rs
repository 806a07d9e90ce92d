//! A synthetic bundle-adjustment problem and its matrix-free Gauss-Newton-CG solve with a
//! block-Jacobi preconditioner: the large sparse least-squares problem Ceres is judged on.
//!
//! Cameras have BAL's nine parameters (an angle-axis rotation `ω`, a translation `t`, a
//! focal length `f` and radial distortion `k₁, k₂`), points three; an observation of point
//! `j` by camera `i` has the residual `f · (1 + k₁ ρ² + k₂ ρ⁴) · p − u` with `P = R(ω) X + t`,
//! `p = (P_x, P_y) / P_z`, `ρ² = |p|²` (2 per observation). The residual function gathers
//! each observation's camera and point (`take`), so its linear map, and its transpose (a
//! scatter-add), touch only the observations: the Jacobian (a few hundred thousand by tens
//! of thousands, a few nonzeros a row) is never formed.
//!
//! Each outer step linearizes once. The preconditioner is the block diagonal of `JᵀJ`
//! (a 9 × 9 block per camera, 3 × 3 per point), obtained from the same linear map by one
//! *batched* application to twelve tangents: tangent `k` sets parameter `k` of every camera
//! (or every point) at once, and since each observation depends on one camera and one point,
//! `J` of it holds, row by row, the derivative with respect to that observation's own camera
//! (point) parameter `k`; the blocks are sums of products of those rows. Then preconditioned
//! CG solves `(JᵀJ + λI) δ = −Jᵀr` (Levenberg damping, adapted as the steps succeed or fail).

use std::time::Instant;

use ferrax::{gauss_newton, Tensor};

use crate::cg::{CgOptions, ConjugateGradient};
use crate::error::{input, Result, SolverError};
use crate::operator::{dot, FnOperator};

/// Parameters per camera (BAL's layout) and per point.
pub const CAMERA: usize = 9;
/// Parameters per point.
pub const POINT: usize = 3;

/// A bundle-adjustment problem: which camera sees which point, where, and a start.
pub struct Bundle {
    /// Number of cameras.
    pub cameras: usize,
    /// Number of points.
    pub points: usize,
    camera_of: Vec<i64>,
    point_of: Vec<i64>,
    observed: Vec<f64>,
    /// The parameters the observations were made from (cameras first, then points).
    pub truth: Vec<f64>,
    /// A perturbed start.
    pub start: Vec<f64>,
    /// The standard deviation of the observation noise, in pixels.
    pub noise: f64,
}

/// A deterministic stream of numbers (SplitMix64), for reproducible synthetic scenes.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Projects points through cameras, observation by observation: `cam[k]` is parameter `k`
/// of each observation's camera and `pt[k]` coordinate `k` of its point (vectors over the
/// observations); the `[n, 2]` image positions. Traced: every operation is a ferrax
/// primitive.
fn project(cam: &[Tensor], pt: &[Tensor]) -> Tensor {
    let (w0, w1, w2) = (&cam[0], &cam[1], &cam[2]);
    let (x0, x1, x2) = (&pt[0], &pt[1], &pt[2]);
    // Rodrigues: R X = X cos θ + (ω × X) sin θ / θ + ω (ω·X) (1 − cos θ) / θ²; θ² has a
    // tiny floor so that neither θ nor its derivative is NaN at ω = 0
    let theta2 = w0 * w0 + w1 * w1 + w2 * w2 + 1e-30;
    let theta = theta2.sqrt();
    let (c, s) = (theta.cos(), theta.sin());
    let a = &s / &theta;
    let b = (1.0 - &c) / &theta2;
    let wx = w0 * x0 + w1 * x1 + w2 * x2;
    let cross = [w1 * x2 - w2 * x1, w2 * x0 - w0 * x2, w0 * x1 - w1 * x0];
    let p = [
        x0 * &c + &cross[0] * &a + w0 * &wx * &b + &cam[3],
        x1 * &c + &cross[1] * &a + w1 * &wx * &b + &cam[4],
        x2 * &c + &cross[2] * &a + w2 * &wx * &b + &cam[5],
    ];
    let (u, v) = (&p[0] / &p[2], &p[1] / &p[2]);
    let r2 = &u * &u + &v * &v;
    let scale = &cam[6] * (1.0 + &cam[7] * &r2 + &cam[8] * &r2 * &r2);
    Tensor::stack(&[&u * &scale, &v * &scale], 1)
}

impl Bundle {
    /// A scene of `cameras` cameras above `points` points in the unit cube, each point seen
    /// by `views` distinct cameras, observations with Gaussian noise of `noise` pixels; the
    /// start perturbs every camera and point.
    pub fn synthetic(
        cameras: usize,
        points: usize,
        views: usize,
        noise: f64,
        seed: u64,
    ) -> Result<Bundle> {
        if cameras == 0 || points == 0 || views == 0 || views > cameras {
            return Err(input(
                "Bundle::synthetic",
                format!("need cameras, points and 1 ≤ views ≤ cameras, got {cameras}, {points}, {views}"),
            ));
        }
        // every size the scene allocates, checked before any allocation (found on a second
        // read: `Bundle::synthetic(usize::MAX, ..)` overflowed a capacity)
        const MOST: usize = 1 << 28;
        let sizes = [
            CAMERA.checked_mul(cameras),
            POINT.checked_mul(points),
            points
                .checked_mul(views)
                .and_then(|o| o.checked_mul(2 * (CAMERA + POINT))),
            (CAMERA.checked_mul(cameras))
                .zip(POINT.checked_mul(points))
                .and_then(|(c, p)| c.checked_add(p))
                .and_then(|d| d.checked_mul(CAMERA + POINT)),
        ];
        if sizes.iter().any(|s| s.is_none_or(|s| s > MOST)) {
            return Err(SolverError::Ferrax(ferrax::Error::ResourceExhausted {
                op: "Bundle::synthetic".into(),
                msg: format!(
                    "{cameras} cameras, {points} points seen {views} times: a scene this size \
                     (or its preconditioner's tangents) holds more than {MOST} values"
                ),
                loc: None,
            }));
        }
        let mut rng = Stream(seed);
        let mut truth = Vec::with_capacity(CAMERA * cameras + POINT * points);
        for _ in 0..cameras {
            let cam = [
                0.1 * rng.normal(),
                0.1 * rng.normal(),
                0.1 * rng.normal(),
                0.5 * rng.normal(),
                0.5 * rng.normal(),
                5.0 + 0.5 * rng.normal(),
                500.0 + 20.0 * rng.normal(),
                0.01 * rng.normal(),
                0.001 * rng.normal(),
            ];
            truth.extend(cam);
        }
        for _ in 0..points * POINT {
            truth.push(2.0 * rng.uniform() - 1.0);
        }
        let (mut camera_of, mut point_of) = (vec![], vec![]);
        for j in 0..points {
            let mut seen: Vec<usize> = vec![];
            while seen.len() < views {
                let c = (rng.next() % cameras as u64) as usize;
                if !seen.contains(&c) {
                    seen.push(c);
                }
            }
            for c in seen {
                camera_of.push(c as i64);
                point_of.push(j as i64);
            }
        }
        let mut b = Bundle {
            cameras,
            points,
            camera_of,
            point_of,
            observed: vec![],
            truth: truth.clone(),
            start: vec![],
            noise,
        };
        let clean = b.project_all(&Tensor::from_vec(truth.clone(), &[truth.len()]))?;
        b.observed = clean.iter().map(|v| v + noise * rng.normal()).collect();
        let scale = [0.01, 0.01, 0.01, 0.05, 0.05, 0.05, 5.0, 0.002, 0.0002];
        b.start = truth
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let s = if k < CAMERA * cameras {
                    scale[k % CAMERA]
                } else {
                    0.05
                };
                v + s * rng.normal()
            })
            .collect();
        Ok(b)
    }

    /// Number of observations (two residuals each).
    pub fn observations(&self) -> usize {
        self.camera_of.len()
    }

    fn project_all(&self, x: &Tensor) -> Result<Vec<f64>> {
        Ok(self.predict(x).to_vec::<f64>()?)
    }

    /// The image positions predicted from parameters `x`, `[2 · observations]`.
    fn predict(&self, x: &Tensor) -> Tensor {
        let (nc, np) = (CAMERA * self.cameras, POINT * self.points);
        let n = self.observations();
        let cams = x
            .slice_axis(0, 0, nc)
            .reshape(&[self.cameras as isize, CAMERA as isize]);
        let pts = x
            .slice_axis(0, nc, nc + np)
            .reshape(&[self.points as isize, POINT as isize]);
        let ci = Tensor::from_vec(self.camera_of.clone(), &[n]);
        let pi = Tensor::from_vec(self.point_of.clone(), &[n]);
        // one column of the (small) camera or point table, then gathered: the transpose
        // scatters into that column and pads it to the table, work in the cameras and
        // points, where slicing columns of a gathered [n, 9] would pad each to [n, 9]
        let column = |table: &Tensor, k: usize, idx: &Tensor| {
            table.slice_axis(1, k, k + 1).reshape(&[-1]).take(idx, 0)
        };
        let cam: Vec<Tensor> = (0..CAMERA).map(|k| column(&cams, k, &ci)).collect();
        let pt: Vec<Tensor> = (0..POINT).map(|k| column(&pts, k, &pi)).collect();
        project(&cam, &pt).reshape(&[-1])
    }

    /// The residuals (predicted − observed image positions) at parameters `x`.
    pub fn residual(&self, x: Tensor) -> Tensor {
        let n = self.observed.len();
        self.predict(&x) - Tensor::from_vec(self.observed.clone(), &[n])
    }

    /// The 9 × 9 camera and 3 × 3 point blocks of `JᵀJ` at `x`, from one batched
    /// application of `x`'s linear map to twelve tangents (see the module doc); row-major,
    /// camera blocks first.
    pub fn jtj_blocks(&self, j: &ferrax::LinearMap) -> Result<(Vec<f64>, Vec<f64>)> {
        let (nc, np) = (CAMERA * self.cameras, POINT * self.points);
        let dim = nc + np;
        let mut tangents = vec![0.0; (CAMERA + POINT) * dim];
        for c in 0..self.cameras {
            for k in 0..CAMERA {
                tangents[k * dim + c * CAMERA + k] = 1.0;
            }
        }
        for p in 0..self.points {
            for k in 0..POINT {
                tangents[(CAMERA + k) * dim + nc + p * POINT + k] = 1.0;
            }
        }
        let rows: Tensor = j.apply_batch(&Tensor::from_vec(tangents, &[CAMERA + POINT, dim]))?;
        let rows = rows.to_vec::<f64>()?;
        let m = 2 * self.observations();
        if rows.len() != (CAMERA + POINT) * m {
            return Err(input(
                "Bundle::jtj_blocks",
                format!(
                    "the linear map gives {} values for {} tangents: not this problem's \
                     ({m} residuals)",
                    rows.len(),
                    CAMERA + POINT
                ),
            ));
        }
        let mut cam = vec![0.0; self.cameras * CAMERA * CAMERA];
        let mut pt = vec![0.0; self.points * POINT * POINT];
        for (o, (&c, &p)) in self.camera_of.iter().zip(&self.point_of).enumerate() {
            for r in [2 * o, 2 * o + 1] {
                let d = |k: usize| rows[k * m + r];
                let cb = &mut cam[c as usize * CAMERA * CAMERA..][..CAMERA * CAMERA];
                for a in 0..CAMERA {
                    for b in 0..CAMERA {
                        cb[a * CAMERA + b] += d(a) * d(b);
                    }
                }
                let pb = &mut pt[p as usize * POINT * POINT..][..POINT * POINT];
                for a in 0..POINT {
                    for b in 0..POINT {
                        pb[a * POINT + b] += d(CAMERA + a) * d(CAMERA + b);
                    }
                }
            }
        }
        Ok((cam, pt))
    }
}

/// Solves `(B + λI) z = v` for a symmetric positive definite block `B` (`k × k`) in place,
/// by Cholesky; a block that is not positive definite is left as the identity.
fn solve_block(b: &[f64], k: usize, lambda: f64, v: &mut [f64]) {
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let mut s = b[i * k + j] + if i == j { lambda } else { 0.0 };
            for q in 0..j {
                s -= l[i * k + q] * l[j * k + q];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    for i in 0..k {
        let s: f64 = (0..i).map(|q| l[i * k + q] * v[q]).sum();
        v[i] = (v[i] - s) / l[i * k + i];
    }
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|q| l[q * k + i] * v[q]).sum();
        v[i] = (v[i] - s) / l[i * k + i];
    }
}

/// What a bundle-adjustment solve did.
#[derive(Clone, Debug)]
pub struct BundleReport {
    /// The parameters at the end.
    pub params: Vec<f64>,
    /// Root mean square reprojection error (pixels) at the start and at the end.
    pub rms_start: f64,
    /// At the end.
    pub rms_end: f64,
    /// Outer steps (one linearization each).
    pub steps: usize,
    /// Linearizations made.
    pub linearizations: usize,
    /// Preconditioned CG iterations, over all steps.
    pub cg_iterations: usize,
    /// Wall time of the solve, seconds.
    pub seconds: f64,
}

impl Bundle {
    /// Levenberg-damped Gauss-Newton from [`start`](Bundle::start): each step one
    /// linearization, the block-Jacobi preconditioner from it, and preconditioned CG (at
    /// most `cg_iterations` per solve) for the step; at most `max_steps` steps.
    pub fn solve(&self, max_steps: usize, cg_iterations: usize) -> Result<BundleReport> {
        let clock = Instant::now();
        let dim = self.start.len();
        let m = 2 * self.observations();
        let cost = |x: &[f64]| -> Result<f64> {
            let r = self
                .residual(Tensor::from_vec(x.to_vec(), &[dim]))
                .to_vec::<f64>()?;
            Ok(dot(&r, &r))
        };
        let (mut x, mut lambda) = (self.start.clone(), 1e-3);
        let mut c = cost(&x)?;
        let rms_start = (c / m as f64).sqrt();
        let (mut steps, mut linearizations, mut cg_total) = (0, 0, 0);
        let opts = CgOptions {
            tol: 1e-6,
            max_iterations: cg_iterations,
        };
        while steps < max_steps {
            steps += 1;
            let gn = gauss_newton(
                |p: Tensor| self.residual(p),
                &Tensor::from_vec(x.clone(), &[dim]),
            )?;
            linearizations += 1;
            let (cam, pt) = self.jtj_blocks(gn.jacobian())?;
            let g: Tensor = gn.gradient()?;
            let b: Vec<f64> = g.to_vec::<f64>()?.iter().map(|v| -v).collect();
            let mut improved = None;
            for _ in 0..10 {
                let a = FnOperator {
                    dim,
                    f: |v: &[f64]| {
                        let jtjv: Vec<f64> = gn
                            .apply(&Tensor::from_vec(v.to_vec(), &[dim]))
                            .and_then(|t: Tensor| t.to_vec::<f64>())
                            .unwrap_or_else(|_| vec![f64::NAN; dim]);
                        jtjv.iter().zip(v).map(|(a, b)| a + lambda * b).collect()
                    },
                };
                let nc = CAMERA * self.cameras;
                let precondition = FnOperator {
                    dim,
                    f: |v: &[f64]| {
                        let mut z = v.to_vec();
                        for (i, zc) in z[..nc].chunks_mut(CAMERA).enumerate() {
                            solve_block(
                                &cam[i * CAMERA * CAMERA..][..CAMERA * CAMERA],
                                CAMERA,
                                lambda,
                                zc,
                            );
                        }
                        for (i, zp) in z[nc..].chunks_mut(POINT).enumerate() {
                            solve_block(
                                &pt[i * POINT * POINT..][..POINT * POINT],
                                POINT,
                                lambda,
                                zp,
                            );
                        }
                        z
                    },
                };
                let sol = ConjugateGradient::new(&a)
                    .preconditioner(&precondition)
                    .options(&opts)
                    .solve(&b)?;
                cg_total += sol.iterations;
                let trial: Vec<f64> = x.iter().zip(&sol.x).map(|(a, d)| a + d).collect();
                let ct = cost(&trial)?;
                if ct.is_finite() && ct < c {
                    lambda = (lambda / 3.0).max(1e-9);
                    improved = Some((trial, ct));
                    break;
                }
                lambda *= 4.0;
            }
            let Some((trial, ct)) = improved else { break };
            let done = c - ct <= 1e-9 * c;
            (x, c) = (trial, ct);
            if done {
                break;
            }
        }
        Ok(BundleReport {
            params: x,
            rms_start,
            rms_end: (c / m as f64).sqrt(),
            steps,
            linearizations,
            cg_iterations: cg_total,
            seconds: clock.elapsed().as_secs_f64(),
        })
    }
}
