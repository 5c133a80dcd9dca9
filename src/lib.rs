//! gradlab: a tiny GPT-2 trained by hand-written WGSL compute shaders through
//! wgpu, natively and in the browser, with a CPU reference for every kernel.
//!
//! Layout: `model` describes shapes and parameters, `cpu` is the f64 reference,
//! `gpu` holds the kernels and the programs that replay a step, `train` ties a
//! model, an optimizer and batches into a run.

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
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;

/// Target id meaning "no target here" (a padded position): no loss, no gradient.
pub const IGNORE_INDEX: u32 = u32::MAX;
