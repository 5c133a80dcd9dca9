//! The GPU side: device setup, the kernels and their dispatch functions, and
//! recorded programs that replay a whole training step in one submission.

pub mod context;
pub mod kernels;
pub mod model;
pub mod program;

pub use context::{AdapterSummary, GpuContext, GpuError, Readback};
pub use kernels::{token_positions, UpdateShape};
pub use program::{Program, ProgramBuilder, View};
