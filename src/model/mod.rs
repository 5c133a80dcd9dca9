//! The model's description: shape (config and presets) and the flat
//! parameter layout with its initialisation, and the LoRA adapters' layout. Not here: activations, which
//! each backend's model (`cpu::model`, `gpu::model`) sizes for itself.

pub mod config;
pub mod layout;
pub mod lora;

pub use config::{ConfigError, ModelConfig};
pub use layout::{BlockTensor, ParamLayout, TensorView};
pub use lora::{AdaptedLinear, AdapterLayout, LoraConfig, LoraTarget};
