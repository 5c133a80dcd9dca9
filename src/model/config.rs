//! Model shape: the five numbers of a GPT-2 config, presets, and validation.
//!
//! Legend used across the crate (docs/DESIGN.md): B sequences per optimizer
//! step (the effective batch), b sequences per micro-batch (what one kernel
//! call sees), G = B/b micro-batches per step, R ranks, T time (sequence
//! positions), C channels (n_embd), V vocabulary, H heads.
//! Validation is the only gate between user input and buffer sizes, so every
//! refusal names the field it is about.

use serde::{Deserialize, Serialize};

/// Errors a user can cause by asking for a model, a batch or an optimizer that
/// cannot work. Each names the field and says why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} must be at least {}, got {}", short(*min), short(*value))]
    TooSmall { field: &'static str, value: f64, min: f64 },
    #[error("{field} must be at most {}, got {}", short(*max), short(*value))]
    TooLarge { field: &'static str, value: f64, max: f64 },
    #[error("{field} must be a finite number, got {}", short(*value))]
    NotFinite { field: &'static str, value: f64 },
    #[error("n_embd ({n_embd}) must be divisible by n_head ({n_head})")]
    HeadsDoNotDivide { n_embd: usize, n_head: usize },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{what} needs {bytes} bytes in one GPU buffer, but this adapter allows at most {limit} ({limit_name}); choose a smaller model or batch")]
    BufferTooLarge { what: String, bytes: u64, limit: u64, limit_name: &'static str },
    /// A lab past a limit of the device it would run on (one GPU buffer's
    /// size, the memory a lab may take): `fields`, the settings that set
    /// it ("batch × seq_len"), and the need and the limit in words.
    #[error("{fields}: {reason}")]
    DeviceLimit { fields: String, reason: String },
    #[error("unknown preset {0:?}; choose one of {names}", names = preset_names())]
    UnknownPreset(String),
}

/// GPT-2 hyper-parameters, named as in GPT-2's `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// V: number of token ids.
    pub vocab_size: usize,
    /// T_max: the longest sequence the position table covers.
    pub block_size: usize,
    /// L: transformer blocks.
    pub n_layer: usize,
    /// H: attention heads.
    pub n_head: usize,
    /// C: channels.
    pub n_embd: usize,
}

/// The presets' names, for messages.
fn preset_names() -> String {
    ModelConfig::PRESETS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// Builds one preset's config.
pub type PresetFn = fn() -> ModelConfig;

/// Byte-level tokens: every UTF-8 text is representable, nothing to train.
pub const BYTE_VOCAB: usize = 256;

impl ModelConfig {
    /// L=2 H=2 C=64 T=64: trains in seconds even on a software adapter.
    pub fn nano() -> Self {
        Self { vocab_size: BYTE_VOCAB, block_size: 64, n_layer: 2, n_head: 2, n_embd: 64 }
    }
    /// L=4 H=4 C=128 T=128.
    pub fn micro() -> Self {
        Self { vocab_size: BYTE_VOCAB, block_size: 128, n_layer: 4, n_head: 4, n_embd: 128 }
    }
    /// L=6 H=6 C=192 T=256.
    pub fn small() -> Self {
        Self { vocab_size: BYTE_VOCAB, block_size: 256, n_layer: 6, n_head: 6, n_embd: 192 }
    }
    /// Every preset by name, smallest first: the one list the CLI, the page
    /// and the benchmark read (the page through `web::presets`).
    pub const PRESETS: [(&'static str, PresetFn); 3] =
        [("nano", Self::nano), ("micro", Self::micro), ("small", Self::small)];

    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        Self::PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, make)| make())
            .ok_or_else(|| ConfigError::UnknownPreset(name.to_string()))
    }

    pub fn head_size(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Checks the numbers against each other; adapter limits are checked when
    /// a run's buffers are made (`gpu::model::check_buffer`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fields: [(&'static str, usize, usize); 5] = [
            ("vocab_size", self.vocab_size, 1 << 20),
            ("block_size", self.block_size, 4096),
            ("n_layer", self.n_layer, 64),
            ("n_head", self.n_head, 64),
            ("n_embd", self.n_embd, 4096),
        ];
        for (field, value, max) in fields {
            if value == 0 {
                return Err(ConfigError::TooSmall { field, value: 0.0, min: 1.0 });
            }
            if value > max {
                return Err(ConfigError::TooLarge { field, value: value as f64, max: max as f64 });
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(ConfigError::HeadsDoNotDivide { n_embd: self.n_embd, n_head: self.n_head });
        }
        if self.block_size < 2 {
            return Err(ConfigError::TooSmall { field: "block_size", value: self.block_size as f64, min: 2.0 });
        }
        Ok(())
    }
}

impl ConfigError {
    /// The field (or fields: "batch × seq_len") the message starts with,
    /// where it starts with one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::TooSmall { field, .. }
            | ConfigError::TooLarge { field, .. }
            | ConfigError::NotFinite { field, .. }
            | ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::DeviceLimit { fields, .. } => Some(fields),
            ConfigError::HeadsDoNotDivide { .. }
            | ConfigError::BufferTooLarge { .. }
            | ConfigError::UnknownPreset(_) => None,
        }
    }
}

/// A number as a person reads it in an error: at most 6 significant digits,
/// powers of ten for the very large and very small (1e308, not 309 digits).
pub fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if !(1e-4..1e9).contains(&a) {
        let s = format!("{x:.5e}");
        // trim zeros of the mantissa: 1.00000e308 -> 1e308
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa =
            if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
        return format!("{mantissa}e{exponent}");
    }
    let digits = (5 - a.log10().floor() as i32).clamp(0, 10) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Helpers for numeric fields typed by users (CLI, URL, page).
pub fn check_finite(field: &'static str, value: f64) -> Result<f64, ConfigError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ConfigError::NotFinite { field, value })
    }
}

pub fn check_range(field: &'static str, value: f64, min: f64, max: f64) -> Result<f64, ConfigError> {
    check_finite(field, value)?;
    if value < min {
        return Err(ConfigError::TooSmall { field, value, min });
    }
    if value > max {
        return Err(ConfigError::TooLarge { field, value, max });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for (name, make) in ModelConfig::PRESETS {
            assert_eq!(ModelConfig::preset(name).unwrap(), make());
            make().validate().unwrap();
        }
    }

    #[test]
    fn inconsistent_configs_name_the_field() {
        let mut c = ModelConfig::nano();
        c.n_head = 3;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("n_embd") && e.contains("n_head"), "{e}");
        let mut c = ModelConfig::nano();
        c.n_layer = 0;
        assert!(c.validate().unwrap_err().to_string().contains("n_layer"));
        let e = check_finite("learning_rate", f64::NAN).unwrap_err().to_string();
        assert!(e.contains("learning_rate") && e.contains("finite"), "{e}");
        assert!(ModelConfig::preset("huge").unwrap_err().to_string().contains("huge"));
        let e = check_range("lr", 1e308, 0.0, 100.0).unwrap_err().to_string();
        assert_eq!(e, "lr must be at most 100, got 1e308");
        for (x, s) in [
            (0.001, "0.001"),
            (3e-3, "0.003"),
            (123456.7, "123457"),
            (2.5e-7, "2.5e-7"),
            (-1.0, "-1"),
            (0.1 + 0.2, "0.3"),
        ] {
            assert_eq!(short(x), s);
        }
    }
}
