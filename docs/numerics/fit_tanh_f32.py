#!/usr/bin/env python3
"""Fits the polynomial of ferrax's f32 tanh (`backend/cpu/math`: TANH_F32_EXPM1) and prints
its coefficients as f32 bit patterns.

`tanh_f32` computes tanh a = e / (e + 2) with e = expm1(2a), reducing 2a = n ln 2 + 2r with
|r| <= ln 2 / 4 and evaluating expm1(2r) = 2r + r^2 P(r). The fit is least squares of the
relative error of that sum on Chebyshev nodes of |r| <= 1.03 ln 2 / 4 (the margin covers the
rounding of the reduction), close to minimax at this degree. It also prints the largest
relative error of the f32-rounded coefficients, in units of 2^-24, per candidate degree.

    python3 docs/numerics/fit_tanh_f32.py        # needs numpy

The check of the finished kernel runs in Rust, on the kernel itself with its fused
multiply-adds (numpy has no single-rounding f32 FMA): every f32 in [0, 9.5] against f64 tanh
rounded to f32, `cargo test --release -p ferrax --lib -- --ignored tanh_f32_every_value
--nocapture`. Measured on 2026-12-01 with degree 5: 2,016,245,620 values exact, 166,649,448
at 1 ulp, 1,288,742 at 2 ulp, none further (both signs). Degree 4 left 36 values at 3 ulp.
"""
import numpy as np

f32 = np.float32


def fit(deg, rmax=np.log(2) / 4 * 1.03, n=6000):
    """Coefficients of P (degree `deg`) with expm1(2r) ~ 2r + r^2 P(r), relative error."""
    k = np.arange(n)
    r = np.cos(np.pi * (k + 0.5) / n) * rmax
    q = np.expm1(2 * r)
    g = (q - 2 * r) / (r * r)
    V = np.vander(r, deg + 1, increasing=True)
    w = r * r / np.abs(q)
    c, *_ = np.linalg.lstsq(V * w[:, None], g * w, rcond=None)
    c32 = [f32(v) for v in c]
    p = sum(float(v) * r**i for i, v in enumerate(c32))
    err = np.max(np.abs(2 * r + r * r * p - q) / np.abs(q))
    return c32, err


if __name__ == "__main__":
    for deg in (4, 5, 6):
        c, err = fit(deg)
        bits = [hex(int(np.array(v).view(np.uint32))) for v in c]
        print(f"degree {deg}: max relative error {err / 2**-24:.3f} x 2^-24, P = {bits}")
