//! The model's description: shape (config and presets) and the flat
//! parameter layout with its initialisation. Not here: activations, which
//! each backend's model (`cpu::model`, `gpu::model`) sizes for itself.

pub mod config;
pub mod layout;

pub use config::{ConfigError, ModelConfig};
pub use layout::{BlockTensor, ParamLayout, TensorView};
