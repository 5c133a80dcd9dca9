//! The model's description: shape (config), parameter layout, and the
//! activation buffers a forward/backward pass needs.

pub mod config;
pub mod layout;

pub use config::{ConfigError, ModelConfig};
pub use layout::{BlockTensor, ParamLayout, TensorView};
