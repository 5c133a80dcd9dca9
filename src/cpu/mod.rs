//! The CPU side: every GPU kernel's twin by the same name, with the plain
//! forms of what the GPU fuses (`kernels`: GELU and the residual add, which
//! the GPU runs as matmul epilogues), the whole model forward/backward, and
//! `CpuRunOf<F>` (a `Trainer`), generic over the float.
//! In f64 (`ReferenceRun`) it is the reference every GPU kernel is tested against;
//! in f32 (`FastCpuRun`) it is the backend for pages without a usable GPU,
//! with its matmuls in `simd`, shared among threads where there are any
//! (`threads`).
//! Not here: anything from `gpu/`; this side must stand on its own.

pub mod kernels;
pub mod model;
mod real;
pub mod run;
pub mod simd;
pub mod threads;

pub use kernels::*;
pub use model::{Activations, CpuModel, CpuModelOf};
pub use real::Real;
pub use run::{CpuRunOf, FastCpuRun, ReferenceRun};
