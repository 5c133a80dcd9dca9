//! gradlab: a tiny GPT-2 trained by hand-written WGSL compute shaders through
//! wgpu, natively and in the browser, with a CPU reference for every kernel.
//!
//! Layout (docs/DESIGN.md §4): `model` describes shapes and parameters,
//! `train` is the backend-neutral core (micro-batches, run settings, step
//! stats and the `Trainer` trait), `cpu` (gradlab's f32 CPU backend and the
//! f64 reference) and `gpu` (the WGSL kernels) each implement `Trainer`, `lab` steps several runs of any
//! backend in lockstep, `accum` holds the one function where the
//! accumulation strategies differ.

pub mod accum;
pub mod bench;
pub mod checkpoint;
pub mod checks;
pub mod cpu;
pub mod data;
pub mod gpu;
pub mod lab;
pub mod model;
pub mod optim;
pub mod playground;
pub mod rng;
pub mod strict;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;

/// Target id meaning "no target here" (a padded position): no loss, no gradient.
pub const IGNORE_INDEX: u32 = u32::MAX;
