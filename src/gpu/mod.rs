//! The GPU side: device setup, the kernels and their dispatch functions,
//! recorded programs that replay a whole training step in one submission, and
//! `GpuRun`, the wgpu `Trainer`.
//!
//! Modules import one way, each only from those above it:
//! `params` (the uniform structs) ← `table` (every kernel declared once) ←
//! `pipelines` (compiled once per device) ← `context` (device, queue,
//! readbacks) ← `program` (recording and replaying work) ← `kernels` (one
//! dispatch function per kernel) ← `plan` (every buffer a run makes, sized
//! before it is, and the device's limits checked) ← `model` (the GPT-2
//! passes) ← `run` (`GpuRun`: stepping, evaluation, generation).

mod params;
mod table;

mod pipelines;

pub mod context;
pub mod program;

pub mod kernels;
pub mod model;
pub mod plan;
pub mod run;

#[cfg(test)]
mod wgsl_mirror;

pub use context::{AdapterSummary, GpuContext, GpuError, PendingMap, Readback};
pub use kernels::{token_positions, GradWrite, UpdateSettings};
pub use program::{MatmulKernel, Program, ProgramBuilder, RowKernel, View};
pub use run::GpuRun;
