//! LoRA: a low-rank update on some of the model's Linear layers, trained
//! while the base weights stay frozen. For an adapted weight W [out, in] the
//! layer computes x·(W + s·B·A)ᵀ with A [r, in], B [out, r] and s = α/r; B
//! starts at zero, so a fresh adapter leaves the base model unchanged.
//!
//! The adapters of a run live in one flat buffer laid out here, in the order
//! of `ParamLayout` (layer by layer, A before B), aligned like the weights so
//! a GPU can bind each tensor on its own. The names follow PEFT's,
//! `h.{i}.attn.c_attn.lora_A`, so an adapter's gradient or weights can be
//! read by name from a safetensors file.
//!
//! Legend: L layers, C channels, r rank, s = α/r.

use serde::{Deserialize, Serialize};

use super::config::ConfigError;
use super::layout::{align, check_flat_len, BlockTensor, ParamLayout, TensorView};

/// A Linear layer of each block an adapter may sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraTarget {
    /// attn.c_attn, [3C, C]
    Attn,
    /// attn.c_proj, [C, C]
    AttnProj,
    /// mlp.c_fc, [4C, C]
    Fc,
    /// mlp.c_proj, [C, 4C]
    FcProj,
}

impl LoraTarget {
    pub const ALL: [LoraTarget; 4] = [LoraTarget::Attn, LoraTarget::AttnProj, LoraTarget::Fc, LoraTarget::FcProj];

    /// The layer's name inside a block, as in GPT-2 (`attn.c_attn`).
    pub fn module(self) -> &'static str {
        match self {
            LoraTarget::Attn => "attn.c_attn",
            LoraTarget::AttnProj => "attn.c_proj",
            LoraTarget::Fc => "mlp.c_fc",
            LoraTarget::FcProj => "mlp.c_proj",
        }
    }

    /// What the command line and the page call it.
    pub fn key(self) -> &'static str {
        match self {
            LoraTarget::Attn => "attn",
            LoraTarget::AttnProj => "attn_proj",
            LoraTarget::Fc => "fc",
            LoraTarget::FcProj => "fc_proj",
        }
    }

    pub fn parse(key: &str) -> Result<Self, ConfigError> {
        Self::ALL.into_iter().find(|t| t.key() == key || t.module() == key).ok_or_else(|| ConfigError::Invalid {
            field: "lora_targets",
            reason: format!("unknown layer {key:?}; choose from {}", Self::ALL.map(|t| t.key()).join(", ")),
        })
    }

    /// The frozen weight this adapter updates.
    pub fn weight(self) -> BlockTensor {
        match self {
            LoraTarget::Attn => BlockTensor::AttnW,
            LoraTarget::AttnProj => BlockTensor::AttnProjW,
            LoraTarget::Fc => BlockTensor::FcW,
            LoraTarget::FcProj => BlockTensor::FcProjW,
        }
    }
}

/// Which layers carry adapters, their rank and α, and the seed of A's init.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// r: the rank of every adapter.
    pub rank: usize,
    /// α: the update is scaled by α/r.
    pub alpha: f64,
    /// Bit i set: `LoraTarget::ALL[i]` is adapted.
    pub targets: u8,
    /// Seeds A's initial values (B starts at zero).
    pub seed: u64,
}

impl LoraConfig {
    /// All four layers, α = 2r (α/r = 2, a common choice).
    pub fn all_layers(rank: usize, seed: u64) -> Self {
        Self { rank, alpha: 2.0 * rank as f64, targets: 0b1111, seed }
    }

    pub fn targets(&self) -> Vec<LoraTarget> {
        LoraTarget::ALL.into_iter().enumerate().filter(|(i, _)| self.targets & (1 << i) != 0).map(|(_, t)| t).collect()
    }

    /// The bit set of `targets`.
    pub fn target_bits(targets: &[LoraTarget]) -> u8 {
        LoraTarget::ALL.iter().enumerate().filter(|(_, t)| targets.contains(t)).fold(0, |acc, (i, _)| acc | (1 << i))
    }

    /// s = α/r, the factor on B·A.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    pub fn validate(&self, n_embd: usize) -> Result<(), ConfigError> {
        if self.rank == 0 {
            return Err(ConfigError::TooSmall { field: "lora_rank", value: 0.0, min: 1.0 });
        }
        // a rank above the narrower side of a weight adds nothing a full update could not
        if self.rank > n_embd {
            return Err(ConfigError::TooLarge { field: "lora_rank", value: self.rank as f64, max: n_embd as f64 });
        }
        if !self.alpha.is_finite() {
            return Err(ConfigError::NotFinite { field: "lora_alpha", value: self.alpha });
        }
        if self.alpha <= 0.0 || self.alpha > 1e4 {
            return Err(ConfigError::Invalid {
                field: "lora_alpha",
                reason: format!("must be in (0, 10000], got {}", crate::model::config::short(self.alpha)),
            });
        }
        if self.targets == 0 || self.targets > 0b1111 {
            return Err(ConfigError::Invalid {
                field: "lora_targets",
                reason: "name at least one of attn, attn_proj, fc, fc_proj".into(),
            });
        }
        Ok(())
    }
}

/// One adapted Linear: where its frozen weight and its A and B live.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptedLinear {
    pub layer: usize,
    pub target: LoraTarget,
    /// W [out, in] in the model's flat buffer.
    pub weight: TensorView,
    /// A [r, in] in the adapter buffer.
    pub a: TensorView,
    /// B [out, r] in the adapter buffer.
    pub b: TensorView,
}

impl AdaptedLinear {
    pub fn out_features(&self) -> usize {
        self.weight.shape[0]
    }
    pub fn in_features(&self) -> usize {
        self.weight.shape[1]
    }
}

/// The flat adapter buffer of one model and LoRA config.
#[derive(Debug, Clone)]
pub struct AdapterLayout {
    pub lora: LoraConfig,
    pub linears: Vec<AdaptedLinear>,
    /// Floats, alignment gaps included.
    pub total: usize,
    /// Trainable numbers (no gaps).
    pub num_params: usize,
}

impl AdapterLayout {
    pub fn new(model: &ParamLayout, lora: LoraConfig) -> Result<Self, ConfigError> {
        lora.validate(model.config.n_embd)?;
        let r = lora.rank;
        let mut offset = 0;
        let mut num_params = 0;
        let mut view = |name: String, shape: Vec<usize>| {
            let len = shape.iter().product();
            let v = TensorView { name, shape, offset, len };
            offset = align(offset + len);
            num_params += len;
            v
        };
        let mut linears = Vec::new();
        for layer in 0..model.config.n_layer {
            for target in lora.targets() {
                let weight = model.block(layer, target.weight()).clone();
                let (out, inp) = (weight.shape[0], weight.shape[1]);
                let prefix = format!("h.{layer}.{}", target.module());
                let a = view(format!("{prefix}.lora_A"), vec![r, inp]);
                let b = view(format!("{prefix}.lora_B"), vec![out, r]);
                linears.push(AdaptedLinear { layer, target, weight, a, b });
            }
        }
        Ok(Self { lora, linears, total: offset, num_params })
    }

    /// Every adapter tensor, A and B of each layer in order.
    pub fn tensors(&self) -> Vec<&TensorView> {
        self.linears.iter().flat_map(|l| [&l.a, &l.b]).collect()
    }

    /// The adapted Linear on `which` of block `layer`, if there is one.
    pub fn find(&self, layer: usize, which: BlockTensor) -> Option<&AdaptedLinear> {
        self.linears.iter().find(|l| l.layer == layer && l.target.weight() == which)
    }

    /// PEFT's initialisation: A uniform in ±1/√in (Kaiming-uniform with
    /// a = √5, as `nn.Linear` does), B zero.
    pub fn init(&self) -> Vec<f32> {
        let mut rng = crate::rng::Rng::new(self.lora.seed);
        let mut flat = vec![0.0f32; self.total];
        for l in &self.linears {
            let bound = 1.0 / (l.in_features() as f32).sqrt();
            let a = rng.vec_f32(l.a.len, bound);
            flat[l.a.range()].copy_from_slice(&a);
        }
        flat
    }

    /// Refuses a flat adapter vector of the wrong length.
    pub fn check_len(&self, len: usize) -> Result<(), ConfigError> {
        check_flat_len("adapters", "these adapters", self.total, len)
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::ALIGN_FLOATS;
    use super::*;
    use crate::model::ModelConfig;

    fn layout() -> ParamLayout {
        ParamLayout::new(&ModelConfig { vocab_size: 13, block_size: 5, n_layer: 2, n_head: 2, n_embd: 6 })
    }

    #[test]
    fn adapters_are_aligned_named_and_start_as_the_base_model() {
        let model = layout();
        let lora = LoraConfig { rank: 3, alpha: 5.0, targets: 0b1011, seed: 9 };
        let a = AdapterLayout::new(&model, lora).unwrap();
        assert_eq!(a.linears.len(), 2 * 3);
        let names: Vec<&str> = a.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names[0], "h.0.attn.c_attn.lora_A");
        assert_eq!(names[1], "h.0.attn.c_attn.lora_B");
        assert_eq!(names[5], "h.0.mlp.c_proj.lora_B");
        let fc_proj = a.find(1, BlockTensor::FcProjW).unwrap();
        assert_eq!((fc_proj.a.shape.clone(), fc_proj.b.shape.clone()), (vec![3, 24], vec![6, 3]));
        assert!(a.find(0, BlockTensor::FcW).is_none());
        for t in a.tensors() {
            assert_eq!(t.offset % ALIGN_FLOATS, 0);
        }
        assert_eq!(a.num_params, 2 * (3 * 6 + 18 * 3 + 3 * 6 + 6 * 3 + 3 * 24 + 6 * 3));
        let init = a.init();
        for l in &a.linears {
            let bound = 1.0 / (l.in_features() as f32).sqrt();
            assert!(init[l.a.offset..l.a.offset + l.a.len].iter().all(|x| x.abs() <= bound && *x != 0.0));
            assert!(init[l.b.offset..l.b.offset + l.b.len].iter().all(|&x| x == 0.0), "B = 0: the base model");
        }
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let model = layout();
        let bad = |lora: LoraConfig, field: &str| {
            let e = AdapterLayout::new(&model, lora).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        };
        let ok = LoraConfig::all_layers(2, 1);
        bad(LoraConfig { rank: 0, ..ok }, "lora_rank");
        bad(LoraConfig { rank: 7, ..ok }, "lora_rank");
        bad(LoraConfig { alpha: f64::NAN, ..ok }, "lora_alpha");
        bad(LoraConfig { alpha: -1.0, ..ok }, "lora_alpha");
        bad(LoraConfig { targets: 0, ..ok }, "lora_targets");
        assert!(LoraTarget::parse("mlp").unwrap_err().to_string().contains("attn_proj"));
        assert_eq!(LoraTarget::parse("mlp.c_fc").unwrap(), LoraTarget::Fc);
        assert_eq!(LoraConfig::target_bits(&[LoraTarget::Fc, LoraTarget::Attn]), 0b0101);
    }
}
