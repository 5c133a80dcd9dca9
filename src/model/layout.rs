//! Where every parameter lives in the one flat buffer (and so in the gradient,
//! Adam m and Adam v buffers, which share the layout).
//!
//! Tensors are ordered "decayed first": every matrix (wte, wpe and the four
//! Linear weights of each block) comes before every vector (biases, LayerNorm
//! gains), so AdamW applies weight decay to the prefix `[0, decay_end)` in one
//! dispatch. Offsets are aligned to 64 floats (256 bytes), the largest value
//! WebGPU allows for `minStorageBufferOffsetAlignment`, so any tensor can be
//! bound on its own on any adapter.

use super::config::{ConfigError, ModelConfig};

/// Offsets are multiples of this many f32s (256 bytes).
pub const ALIGN_FLOATS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct TensorView {
    /// GPT-2 name, e.g. `h.0.attn.c_attn.weight`.
    pub name: String,
    /// PyTorch shape: Linear weights are `[out, in]`.
    pub shape: Vec<usize>,
    /// Offset in floats inside the flat buffer.
    pub offset: usize,
    pub len: usize,
}

impl TensorView {
    /// Where the tensor lies in its flat buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// Refuses a flat vector of `len` floats where a layout of `total` is
/// expected (`field` and `what` name the layout in the message).
pub(super) fn check_flat_len(field: &'static str, what: &str, total: usize, len: usize) -> Result<(), ConfigError> {
    if len == total {
        return Ok(());
    }
    Err(ConfigError::Invalid { field, reason: format!("expected {total} floats for {what}, got {len}") })
}

/// Names of one block's tensors, in GPT-2 spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTensor {
    Ln1W,
    Ln1B,
    AttnW,
    AttnB,
    AttnProjW,
    AttnProjB,
    Ln2W,
    Ln2B,
    FcW,
    FcB,
    FcProjW,
    FcProjB,
}

#[derive(Debug, Clone)]
pub struct ParamLayout {
    pub config: ModelConfig,
    pub tensors: Vec<TensorView>,
    /// Total floats, including alignment gaps (gaps hold zeros forever).
    pub total: usize,
    /// Tensors before this float offset receive weight decay.
    pub decay_end: usize,
    /// Number of real parameters (no gaps).
    pub num_params: usize,
}

pub(super) fn align(x: usize) -> usize {
    x.div_ceil(ALIGN_FLOATS) * ALIGN_FLOATS
}

impl ParamLayout {
    pub fn new(config: &ModelConfig) -> Self {
        let (v, t, c) = (config.vocab_size, config.block_size, config.n_embd);
        let mut matrices: Vec<(String, Vec<usize>)> = vec![("wte".into(), vec![v, c]), ("wpe".into(), vec![t, c])];
        let mut vectors: Vec<(String, Vec<usize>)> = Vec::new();
        for l in 0..config.n_layer {
            let p = format!("h.{l}.");
            matrices.push((format!("{p}attn.c_attn.weight"), vec![3 * c, c]));
            matrices.push((format!("{p}attn.c_proj.weight"), vec![c, c]));
            matrices.push((format!("{p}mlp.c_fc.weight"), vec![4 * c, c]));
            matrices.push((format!("{p}mlp.c_proj.weight"), vec![c, 4 * c]));
            vectors.push((format!("{p}ln_1.weight"), vec![c]));
            vectors.push((format!("{p}ln_1.bias"), vec![c]));
            vectors.push((format!("{p}attn.c_attn.bias"), vec![3 * c]));
            vectors.push((format!("{p}attn.c_proj.bias"), vec![c]));
            vectors.push((format!("{p}ln_2.weight"), vec![c]));
            vectors.push((format!("{p}ln_2.bias"), vec![c]));
            vectors.push((format!("{p}mlp.c_fc.bias"), vec![4 * c]));
            vectors.push((format!("{p}mlp.c_proj.bias"), vec![c]));
        }
        vectors.push(("ln_f.weight".into(), vec![c]));
        vectors.push(("ln_f.bias".into(), vec![c]));

        let mut tensors = Vec::new();
        let mut offset = 0;
        let mut num_params = 0;
        let mut decay_end = 0;
        let n_matrices = matrices.len();
        for (i, (name, shape)) in matrices.into_iter().chain(vectors).enumerate() {
            let len: usize = shape.iter().product();
            tensors.push(TensorView { name, shape, offset, len });
            offset = align(offset + len);
            num_params += len;
            if i + 1 == n_matrices {
                decay_end = offset;
            }
        }
        Self { config: *config, tensors, total: offset, decay_end, num_params }
    }

    /// Refuses a flat parameter (or gradient) vector of the wrong length.
    pub fn check_len(&self, len: usize) -> Result<(), ConfigError> {
        check_flat_len("params", "this model", self.total, len)
    }

    pub fn get(&self, name: &str) -> Option<&TensorView> {
        self.tensors.iter().find(|t| t.name == name)
    }

    fn named(&self, name: &str) -> &TensorView {
        self.get(name).unwrap_or_else(|| unreachable!("layout always has {name}"))
    }

    pub fn wte(&self) -> &TensorView {
        self.named("wte")
    }
    pub fn wpe(&self) -> &TensorView {
        self.named("wpe")
    }
    pub fn ln_f_w(&self) -> &TensorView {
        self.named("ln_f.weight")
    }
    pub fn ln_f_b(&self) -> &TensorView {
        self.named("ln_f.bias")
    }

    pub fn block(&self, layer: usize, which: BlockTensor) -> &TensorView {
        let suffix = match which {
            BlockTensor::Ln1W => "ln_1.weight",
            BlockTensor::Ln1B => "ln_1.bias",
            BlockTensor::AttnW => "attn.c_attn.weight",
            BlockTensor::AttnB => "attn.c_attn.bias",
            BlockTensor::AttnProjW => "attn.c_proj.weight",
            BlockTensor::AttnProjB => "attn.c_proj.bias",
            BlockTensor::Ln2W => "ln_2.weight",
            BlockTensor::Ln2B => "ln_2.bias",
            BlockTensor::FcW => "mlp.c_fc.weight",
            BlockTensor::FcB => "mlp.c_fc.bias",
            BlockTensor::FcProjW => "mlp.c_proj.weight",
            BlockTensor::FcProjB => "mlp.c_proj.bias",
        };
        self.named(&format!("h.{layer}.{suffix}"))
    }

    /// GPT-2 initialisation (as nanoGPT): N(0, 0.02) for matrices, residual
    /// projections scaled by 1/sqrt(2L), zero biases, unit LayerNorm gains.
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let mut rng = crate::rng::Rng::new(seed);
        let mut flat = vec![0.0f32; self.total];
        let proj_std = 0.02 / ((2 * self.config.n_layer) as f64).sqrt();
        for t in &self.tensors {
            let dst = &mut flat[t.offset..t.offset + t.len];
            if t.name.ends_with("ln_1.weight") || t.name.ends_with("ln_2.weight") || t.name == "ln_f.weight" {
                dst.fill(1.0);
            } else if t.shape.len() == 2 {
                let std = if t.name.ends_with("c_proj.weight") { proj_std } else { 0.02 };
                for x in dst.iter_mut() {
                    *x = (rng.normal() * std) as f32;
                }
            }
        }
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_disjoint() {
        let cfg = ModelConfig { vocab_size: 37, block_size: 11, n_layer: 3, n_head: 2, n_embd: 10 };
        let l = ParamLayout::new(&cfg);
        let mut end = 0;
        for t in &l.tensors {
            assert_eq!(t.offset % ALIGN_FLOATS, 0, "{}", t.name);
            assert!(t.offset >= end, "{} overlaps", t.name);
            end = t.offset + t.len;
        }
        assert!(end <= l.total);
        assert_eq!(l.tensors.len(), 2 + 12 * 3 + 2);
        let per_block = 12 * 10 * 10 + 13 * 10;
        assert_eq!(l.num_params, 37 * 10 + 11 * 10 + 3 * per_block + 20);
        let last_matrix = l.block(2, BlockTensor::FcProjW);
        assert!(l.decay_end >= last_matrix.offset + last_matrix.len);
        assert!(l.decay_end <= l.block(0, BlockTensor::Ln1W).offset);
    }
}
