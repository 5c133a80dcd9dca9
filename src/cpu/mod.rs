//! The CPU reference: every GPU kernel's twin by the same name, the whole
//! model forward/backward, and `CpuRun` (a `Trainer`), in f64.
//! Not here: anything from `gpu/`; this side must stand on its own.

pub mod kernels;
pub mod model;
pub mod run;

pub use kernels::*;
pub use model::{Activations, CpuModel};
pub use run::CpuRun;
