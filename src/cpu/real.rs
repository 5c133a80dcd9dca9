//! `Real`: the float a CPU run computes in. f64 is the reference, every
//! kernel as plain loops; f32 is the fast backend, which swaps in its own
//! matmuls (`cpu::simd`) and shares everything else.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use super::{kernels, simd};

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
    + 'static
{
    /// How a run on this float describes itself.
    const BACKEND: &'static str;

    /// A constant or hyperparameter, rounded to this float.
    fn of(x: f64) -> Self;

    fn as_f64(self) -> f64;

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
