//! `Real`: the float a CPU run computes in. f64 is the reference, every
//! kernel as plain loops; f32 is the fast backend, which swaps in its own
//! matmuls (`cpu::simd`) and shares everything else.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use super::{kernels, simd};

/// Partial sums of the f32 `dot`.
const LANES: usize = 8;

#[allow(clippy::too_many_arguments)]
pub trait Real:
    num_traits::Float
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + for<'a> Sum<&'a Self>
    + Default
    + Debug
    + Send
    + Sync
    + 'static
{
    /// How a run on this float describes itself.
    const BACKEND: &'static str;

    /// A constant or hyperparameter, rounded to this float.
    fn of(x: f64) -> Self;

    fn as_f64(self) -> f64;

    /// tanh, for GELU's tanh form (`kernels::gelu_forward`, `gelu_backward`).
    fn gelu_tanh(self) -> Self {
        self.tanh()
    }

    /// Σ x·y over the shorter of the two, summed in order from the first.
    fn dot(x: &[Self], y: &[Self]) -> Self {
        x.iter().zip(y).fold(Self::zero(), |s, (&a, &b)| s + a * b)
    }

    /// out [N,OC] = inp [N,C] · weightᵀ + bias (`kernels::matmul_forward`).
    fn matmul_forward(
        out: &mut [Self],
        inp: &[Self],
        weight: &[Self],
        bias: Option<&[Self]>,
        n: usize,
        c: usize,
        oc: usize,
    ) {
        kernels::matmul_forward(out, inp, weight, bias, n, c, oc)
    }

    /// dinp, dweight, dbias += matmul backward (`kernels::matmul_backward`).
    fn matmul_backward(
        dinp: &mut [Self],
        dweight: Option<&mut [Self]>,
        dbias: Option<&mut [Self]>,
        dout: &[Self],
        inp: &[Self],
        weight: &[Self],
        n: usize,
        c: usize,
        oc: usize,
    ) {
        kernels::matmul_backward(dinp, dweight, dbias, dout, inp, weight, n, c, oc)
    }
}

impl Real for f64 {
    const BACKEND: &'static str = "CPU (f64 reference)";

    fn of(x: f64) -> Self {
        x
    }

    fn as_f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const BACKEND: &'static str = "CPU (f32, SIMD)";

    fn of(x: f64) -> Self {
        x as f32
    }

    fn as_f64(self) -> f64 {
        self as f64
    }

    /// tanh as the GPU computes it (gelu.wgsl `tanh_stable`), from an exp of
    /// our own: GELU takes one tanh per activation each way, and std's
    /// `tanhf` is a libm call (in wasm a software one) that no loop around
    /// it can vectorise. Within 3e-7 of the exact tanh everywhere
    /// (`tests/fast_cpu.rs`).
    fn gelu_tanh(self) -> f32 {
        let y = 2.0 * self.abs();
        if y >= 88.0 || y.is_nan() {
            // ±1 to the last bit past 44 (e^-88 is below f32's resolution
            // at 1), and NaN stays NaN so a diverging run is still seen
            return if self.is_nan() { self } else { 1.0f32.copysign(self) };
        }
        let e = exp_of_negative(y);
        ((1.0 - e) / (1.0 + e)).copysign(self)
    }

    /// In eight interleaved partial sums, which the compiler turns into SIMD
    /// vectors (an in-order sum is one dependent chain that it may not
    /// reorder): attention's scores and the gradients of its probabilities.
    #[inline]
    fn dot(x: &[f32], y: &[f32]) -> f32 {
        let n = x.len().min(y.len());
        let (xs, ys) = (x[..n].chunks_exact(LANES), y[..n].chunks_exact(LANES));
        let tail: f32 = xs.remainder().iter().zip(ys.remainder()).map(|(&a, &b)| a * b).sum();
        let mut sums = [0.0f32; LANES];
        for (xc, yc) in xs.zip(ys) {
            for j in 0..LANES {
                sums[j] += xc[j] * yc[j];
            }
        }
        // a fixed tree, so a run is reproducible
        ((sums[0] + sums[4]) + (sums[2] + sums[6])) + ((sums[1] + sums[5]) + (sums[3] + sums[7])) + tail
    }

    fn matmul_forward(
        out: &mut [f32],
        inp: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        n: usize,
        c: usize,
        oc: usize,
    ) {
        simd::matmul_forward(out, inp, weight, bias, n, c, oc)
    }

    fn matmul_backward(
        dinp: &mut [f32],
        dweight: Option<&mut [f32]>,
        dbias: Option<&mut [f32]>,
        dout: &[f32],
        inp: &[f32],
        weight: &[f32],
        n: usize,
        c: usize,
        oc: usize,
    ) {
        simd::matmul_backward(dinp, dweight, dbias, dout, inp, weight, n, c, oc)
    }
}

/// e^(−y) for 0 ≤ y < 88: y = n·ln 2 + r with |r| ≤ ln 2 / 2, so e^(−y) =
/// 2^(−n) · e^(−r), e^(−r) by its Taylor series to the 7th power (the first
/// term left out is below 1e-8 of the result) and 2^(−n) written as a float's
/// exponent.
fn exp_of_negative(y: f32) -> f32 {
    // y ≥ 0, so the cast truncates towards the nearest whole n
    let n = (y * std::f32::consts::LOG2_E + 0.5) as i32;
    let x = n as f32 * std::f32::consts::LN_2 - y;
    let p = 1.0
        + x * (1.0
            + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0 + x / 5040.0))))));
    // n ≤ 127 for y < 88, so 127 − n is a normal float's exponent
    p * f32::from_bits(((127 - n) as u32) << 23)
}
