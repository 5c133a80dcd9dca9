//! The CPU reference: every GPU kernel's twin by the same name, and the whole
//! model forward/backward, in f64.

pub mod kernels;
pub mod model;
pub mod run;

pub use kernels::*;
pub use model::{Activations, CpuModel};
pub use run::CpuRun;
