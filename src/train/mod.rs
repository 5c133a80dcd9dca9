//! The backend-neutral core of training: what a step takes and gives back, and
//! the one trait every backend implements (see docs/DESIGN.md §4).
//!
//! Legend: B sequences per optimizer step, b sequences per micro-batch, G =
//! B/b micro-batches per step, T positions, V vocabulary.
//! Not here: any GPU or CPU code. `data/`, `cpu/`, `gpu/` and `lab` all build
//! on this module; it imports only `model`, `optim` and `rng`.

pub mod batch;
pub mod run;
pub mod sampling;
pub mod state;
pub mod trainer;

pub use batch::{Batch, MicroBatch};
pub use run::{RunConfig, StepError, StepStats};
pub use sampling::{check_window, inverse_temperature, prompt_window, sample_draws, SAMPLE_CHUNK};
pub use state::RunState;
pub use trainer::{StepWork, Trainer};
