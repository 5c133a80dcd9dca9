//! The GPU side: device setup, the kernels and their dispatch functions,
//! recorded programs that replay a whole training step in one submission, and
//! `GpuRun`, the wgpu `Trainer`.

pub mod context;
pub mod kernels;
pub mod model;
pub mod program;
pub mod run;

pub use context::{AdapterSummary, GpuContext, GpuError, PendingMap, Readback};
pub use kernels::{token_positions, UpdateShape};
pub use program::{Program, ProgramBuilder, View};
pub use run::GpuRun;
