//! What a GPU run will allocate, known before anything is: the size of every
//! buffer `GpuRun::new` makes (`RunSizes`, which the allocating code reads
//! its sizes from, so the two cannot drift), a bound on what its recorded
//! programs make (uniform arenas, reduction scratch), and the check of a
//! whole lab against a device's limits (`check_lab`): each buffer against
//! the largest buffer and binding the device allows, the grid of the largest
//! dispatch, the storage buffers a kernel binds, and the lab's total against
//! a memory budget. A lab past one is refused naming the settings to lower
//! and the limit in words, before a byte is allocated.
//!
//! Used by `GpuRun` (against its device's limits), by `Lab` through
//! `Trainer::check_lab`, and by the settings layer (`lab::settings`), which
//! checks against WebGPU's default limits where it cannot reach the adapter.
//! tests/limits.rs builds runs on the adapter wgpu finds (lavapipe here) and
//! checks what they allocate against this plan.

use crate::model::{AdapterLayout, ConfigError, ModelConfig, ParamLayout};
use crate::train::{RunConfig, SAMPLE_CHUNK};

use super::kernels::{split_partials_bound, FEWEST_MATMUL_ROWS, REDUCE_ROWS, SUM_BLOCK};
use super::program::{SCRATCH_MIN_WORDS, UNIFORM_ALIGN};
use super::table::KernelId;

/// What a buffer holds, for saying which settings grow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// The model's weights, their gradient or the optimizer's moments: the
    /// preset's size, the position table growing with the context.
    Weights,
    /// LoRA's adapters and their gradient.
    Adapters,
    /// Activations [b,T,…] of one micro-batch.
    Activations,
    /// Attention scores [b,NH,T,T] of one micro-batch: T² per head.
    Attention,
    /// Logits and their gradient [b,T,V].
    Logits,
    /// The step's token ids: G slots of b×T positions.
    Tokens,
    /// What the recorded programs make: a uniform slot per dispatch, for
    /// every micro-batch of a step, and reduction scratch (a bound).
    Programs,
    /// A few words: scalars, statistics, readbacks.
    Small,
}

impl Holds {
    /// What it is, in words.
    pub fn what(self) -> &'static str {
        match self {
            Holds::Weights => "the model's weights, gradients and optimizer moments",
            Holds::Adapters => "the LoRA adapters",
            Holds::Activations => "activations",
            Holds::Attention => "attention scores",
            Holds::Logits => "logits",
            Holds::Tokens => "token ids",
            Holds::Programs => "recorded dispatches",
            Holds::Small => "step statistics",
        }
    }
}

/// One kind of buffer a run makes: `copies` of `words` 4-byte words each,
/// bound `binding` words at a time at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    pub label: &'static str,
    pub words: usize,
    pub binding: usize,
    pub copies: usize,
    pub holds: Holds,
}

impl Planned {
    fn new(label: &'static str, words: usize, copies: usize, holds: Holds) -> Self {
        // a buffer holds one word at least (`GpuContext::storage`)
        let words = words.max(1);
        Self { label, words, binding: words, copies, holds }
    }

    pub fn bytes(&self) -> u64 {
        self.words as u64 * 4
    }
}

/// `a · b · …` in 64 bits, as a word count (saturating: a size past usize is
/// refused by the limits before anything is made of it).
fn product(factors: &[usize]) -> usize {
    let p = factors.iter().fold(1u64, |p, &f| p.saturating_mul(f as u64));
    usize::try_from(p).unwrap_or(usize::MAX)
}

/// Each part of a token slot starts 64-word aligned, so every view is a
/// valid storage binding offset on any adapter (256 bytes).
pub(crate) fn token_part(n: usize) -> usize {
    n.div_ceil(64) * 64
}

/// Words of one token slot: inputs [b,T], targets [b,T], the embedding
/// backward's offsets [V+1] and positions [b*T] (`run::tokens`).
pub(crate) fn token_slot_words(bt: usize, vocab: usize) -> usize {
    3 * token_part(bt) + token_part(vocab + 1)
}

/// The sizes of a model's buffers for micro-batches of `b` sequences of `t`
/// positions (`GpuModel::new` allocates each from here).
#[derive(Clone, Debug)]
pub struct ModelSizes {
    pub config: ModelConfig,
    pub b: usize,
    pub t: usize,
    /// `ParamLayout::total`: the weights, their gradient, LoRA's frozen copy.
    pub params: usize,
    /// `AdapterLayout::total` and the rank, with LoRA.
    pub adapters: Option<(usize, usize)>,
    /// b·T, and b·T times C, 3C and 4C.
    pub rows: usize,
    pub rows_c: usize,
    pub rows_3c: usize,
    pub rows_4c: usize,
    /// b·NH·T·T
    pub att: usize,
    /// b·T·V
    pub logits: usize,
}

impl ModelSizes {
    pub fn new(layout: &ParamLayout, b: usize, t: usize, adapters: Option<&AdapterLayout>) -> Self {
        let c = layout.config;
        let (rows, e) = (product(&[b, t]), c.n_embd);
        Self {
            config: c,
            b,
            t,
            params: layout.total,
            adapters: adapters.map(|a| (a.total, a.lora.rank)),
            rows,
            rows_c: product(&[rows, e]),
            rows_3c: product(&[rows, 3, e]),
            rows_4c: product(&[rows, 4, e]),
            att: product(&[b, c.n_head, t, t]),
            logits: product(&[rows, c.vocab_size]),
        }
    }

    /// Every buffer `GpuModel::new` makes, with the label it gives it.
    pub fn buffers(&self) -> Vec<Planned> {
        use Holds::*;
        let l = self.config.n_layer;
        let (bt, btc, bt3c, bt4c) = (self.rows, self.rows_c, self.rows_3c, self.rows_4c);
        let mut out =
            vec![Planned::new("params", self.params, 1, Weights), Planned::new("grads", self.params, 1, Weights)];
        if let Some((total, rank)) = self.adapters {
            out.extend([
                Planned::new("frozen weights", self.params, 1, Weights),
                Planned::new("adapters", total, 1, Adapters),
                Planned::new("adapter grads", total, 1, Adapters),
                Planned::new("lora h", product(&[bt, rank]), 1, Activations),
                Planned::new("lora dh", product(&[bt, rank]), 1, Activations),
            ]);
        }
        // per layer (LayerActs)
        for (label, words) in [
            ("ln1", btc),
            ("ln1_mean", bt),
            ("ln1_rstd", bt),
            ("qkv", bt3c),
            ("atty", btc),
            ("residual2", btc),
            ("ln2", btc),
            ("ln2_mean", bt),
            ("ln2_rstd", bt),
            ("fch", bt4c),
            ("fch_gelu", bt4c),
            ("residual3", btc),
        ] {
            out.push(Planned::new(label, words, l, Activations));
        }
        out.push(Planned::new("att", self.att, l, Attention));
        for (label, words) in [("encoded", btc), ("lnf", btc), ("lnf_mean", bt), ("lnf_rstd", bt), ("losses", bt)] {
            out.push(Planned::new(label, words, 1, Activations));
        }
        out.push(Planned::new("logits", self.logits, 1, Logits));
        out.push(Planned::new("dlogits", self.logits, 1, Logits));
        // the gradients of activations, shared by all layers (GradActs)
        for (label, words) in
            [("dresidual", btc), ("dln", btc), ("datty", btc), ("dqkv", bt3c), ("dfch", bt4c), ("dfch_gelu", bt4c)]
        {
            out.push(Planned::new(label, words, 1, Activations));
        }
        out.push(Planned::new("dpreatt", self.att, 1, Attention));
        out
    }
}

/// The sizes of everything one `GpuRun` makes.
#[derive(Clone, Debug)]
pub struct RunSizes {
    pub model: ModelSizes,
    /// G: micro-batches per step, one token slot each.
    pub g: usize,
    /// Values the optimizer steps (the adapters with LoRA, else the weights).
    pub trainable: usize,
    /// Words of one token slot.
    pub token_slot: usize,
}

impl RunSizes {
    pub fn new(config: &RunConfig) -> Result<Self, ConfigError> {
        let layout = ParamLayout::new(&config.model);
        let adapters = config.lora.map(|l| AdapterLayout::new(&layout, l)).transpose()?;
        let model = ModelSizes::new(&layout, config.micro_batch, config.seq_len, adapters.as_ref());
        let trainable = adapters.as_ref().map_or(layout.total, |a| a.total);
        let token_slot = token_slot_words(model.rows, config.model.vocab_size);
        Ok(Self { model, g: config.grad_accum, trainable, token_slot })
    }

    /// Every buffer `GpuRun::new` makes (and the distance partials its first
    /// lockstep makes), with the label it gives it; then `programs`.
    pub fn buffers(&self) -> Vec<Planned> {
        use Holds::*;
        let g = self.g;
        let mut out = self.model.buffers();
        let tokens =
            Planned { binding: self.token_slot, ..Planned::new("tokens", product(&[g, self.token_slot]), 1, Tokens) };
        let moments = if self.model.adapters.is_some() { Adapters } else { Weights };
        out.extend([
            tokens,
            Planned::new("step scalars", g + 3, 1, Small),
            Planned::new("optimizer moment 1", self.trainable, 1, moments),
            Planned::new("optimizer moment 2", self.trainable, 1, moments),
            Planned::new("step stats", g + 2, 1, Small),
            Planned::new("norm partials", self.trainable.div_ceil(SUM_BLOCK), 1, Small),
            Planned::new("stats readback", g + 2, STATS_RING, Small),
            Planned::new("distance partials", self.model.params.div_ceil(SUM_BLOCK), 1, Small),
            Planned::new("eval loss sums", g, 1, Small),
            Planned::new("eval loss sums readback", g, 1, Small),
            Planned::new("sample state", 2, 1, Small),
            Planned::new("sample draws", 1 + SAMPLE_CHUNK, 1, Small),
            Planned::new("sampled tokens", SAMPLE_CHUNK, 1, Small),
            Planned::new("sampled tokens readback", SAMPLE_CHUNK, 1, Small),
        ]);
        out.extend(self.programs());
        out
    }

    /// A bound on what the run's recorded programs make (`ProgramBuilder`):
    /// a 256-byte uniform slot per dispatch, and reduction scratch. The step
    /// and the gradients-only programs record every micro-batch's forward
    /// and backward; validation records one program per token slot.
    pub fn programs(&self) -> Vec<Planned> {
        let (g, l) = (self.g, self.model.config.n_layer);
        let lora = self.model.adapters.is_some();
        let (forward, backward) = (forward_dispatches(l), backward_dispatches(l, lora));
        let merge = if lora { 8 * l } else { 0 };
        // grads and step: G x (forward, loss, sum, backward) and the norm;
        // step: and the update and the merge; then the merge alone, the
        // distance, G validation programs (forward, loss, sum) and sampling
        let recorded = product(&[2, g, forward + 2 + backward]) + 4 + 1 + 2 * merge + 2;
        let slots = |dispatches: usize| product(&[dispatches.max(1), UNIFORM_SLOT_WORDS]);
        let words = slots(recorded) + product(&[g, slots(forward + 2)]) + slots(forward + 1);
        let scratch = product(&[2, self.scratch_bound(true)]) + product(&[g + 1, self.scratch_bound(false)]);
        vec![
            // the step program's arena is the largest one buffer
            Planned { binding: 0, ..Planned::new("uniform arenas", words, 1, Holds::Programs) },
            Planned { binding: 0, ..Planned::new("reduction scratch", scratch, 1, Holds::Programs) },
            // a word each program may bind where a kernel reads nothing
            Planned { binding: 0, ..Planned::new("unread bindings", g + 5, 1, Holds::Programs) },
        ]
    }

    /// Words of the largest single uniform arena (the step program's).
    pub fn largest_arena(&self) -> usize {
        let (l, lora) = (self.model.config.n_layer, self.model.adapters.is_some());
        product(&[self.g, forward_dispatches(l) + 2 + backward_dispatches(l, lora)])
            .saturating_add(8 * l + 8)
            .saturating_mul(UNIFORM_SLOT_WORDS)
    }

    /// A bound on the scratch one program makes (`ProgramBuilder::scratch`
    /// replaces a smaller one with each larger request, and every one stays
    /// alive with the dispatches that read it): each distinct product's K
    /// split and, with `backward`, each column reduction, at 1024 words at least.
    fn scratch_bound(&self, backward: bool) -> usize {
        let m = &self.model;
        let (c, v, n) = (m.config.n_embd, m.config.vocab_size, m.rows);
        let rank = m.adapters.map_or(0, |(_, r)| r);
        // forward products [M, N, K]: qkv, attention's projection, fc, fc's projection, logits
        let mut products = vec![[n, 3 * c, c], [n, c, c], [n, 4 * c, c], [n, c, 4 * c], [n, v, c]];
        let mut reductions = Vec::new();
        if backward {
            // each product's input gradient and weight gradient, LoRA's four
            products.extend([[n, c, 3 * c], [n, c, c], [n, c, 4 * c], [n, 4 * c, c], [n, c, v]]);
            products.extend([[3 * c, c, n], [c, c, n], [4 * c, c, n], [c, 4 * c, n], [v, c, n]]);
            if rank > 0 {
                for (inp, out) in [(c, 3 * c), (c, c), (c, 4 * c), (4 * c, c)] {
                    products.extend([[n, rank, inp], [n, rank, out], [out, rank, n], [rank, inp, n]]);
                }
            }
            // biases' and LayerNorms' column sums
            for cols in [3 * c, c, 4 * c] {
                reductions.push(product(&[n.div_ceil(REDUCE_ROWS).max(1), cols]));
            }
        }
        let split = products.iter().map(|&[m, n, k]| split_partials_bound(m, n, k));
        split.chain(reductions).filter(|&w| w > 0).map(|w| w.max(SCRATCH_MIN_WORDS)).fold(0usize, usize::saturating_add)
    }

    /// Bytes of every buffer together.
    pub fn total_bytes(&self) -> u64 {
        self.buffers().iter().map(|p| p.bytes().saturating_mul(p.copies as u64)).fold(0, u64::saturating_add)
    }
}

/// Step-stats readback buffers a run keeps in flight (`run::step`).
pub(crate) const STATS_RING: usize = 4;

/// Words of one dispatch's uniform slot (every params struct fits one
/// alignment step, `program`).
const UNIFORM_SLOT_WORDS: usize = UNIFORM_ALIGN / 4;

/// At most how many dispatches `GpuModel::record_forward` records: the
/// embedding, per layer two LayerNorms, attention and four products (each
/// at most two dispatches: a K split and its sum), the final LayerNorm and
/// the logits' product.
pub(crate) fn forward_dispatches(layers: usize) -> usize {
    4 + 11 * layers
}

/// At most how many `record_backward` records: the logits' product's two
/// (four dispatches), the final LayerNorm's (one and its two column sums,
/// and the bias's two), per layer four Linears (input and weight products,
/// the bias's column sums; with LoRA the input's product and four of
/// LoRA's: ten at most), GELU, attention's three and two LayerNorms, and the
/// embedding's two.
pub(crate) fn backward_dispatches(layers: usize, lora: bool) -> usize {
    let linear = if lora { 10 } else { 6 };
    11 + layers * (4 * linear + 1 + 3 + 10)
}

/// The most storage buffers any kernel binds at once.
pub fn storage_buffers_needed() -> u32 {
    KernelId::ALL.iter().map(|k| k.spec().bindings.len() as u32).max().unwrap_or(0)
}

/// A byte count as a reader reads it: "1.5 GiB", "300 MiB", "12 KiB".
pub fn in_words(bytes: u64) -> String {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in units {
        if bytes >= size {
            let x = bytes as f64 / size as f64;
            let shown = if x >= 100.0 || x.fract() < 0.05 { format!("{x:.0}") } else { format!("{x:.1}") };
            return format!("{shown} {unit}");
        }
    }
    format!("{bytes} bytes")
}

/// The settings a run's buffer of `holds` grows with, as the lab's settings
/// name them ("batch × seq_len"), and what to lower. A run whose one
/// micro-batch is the whole batch (the full-batch reference) is sized by the
/// batch; the others by the micro-batch.
fn grows_with(holds: Holds, whole_batch: bool) -> (&'static str, &'static str) {
    let (batch, lower) = if whole_batch {
        ("batch × seq_len", "lower the batch or the context")
    } else {
        ("micro_batch × seq_len", "lower the micro-batch or the context")
    };
    match holds {
        Holds::Attention | Holds::Activations | Holds::Logits => (batch, lower),
        Holds::Tokens => ("batch × seq_len", "lower the batch or the context"),
        Holds::Weights => ("preset × seq_len", "choose a smaller model or context"),
        Holds::Adapters => ("lora_rank", "lower the LoRA rank"),
        Holds::Programs => {
            ("batch × micro_batch", "use fewer micro-batches per step (a larger micro-batch or a smaller batch)")
        }
        Holds::Small => ("batch", "lower the batch"),
    }
}

/// How the buffer is shaped, for the message.
fn shape(sizes: &RunSizes, holds: Holds) -> String {
    let m = &sizes.model;
    let (b, t) = (m.b, m.t);
    let seqs = if b == 1 { "1 sequence".to_string() } else { format!("{b} sequences") };
    match holds {
        Holds::Attention => format!(" ({seqs} × {} heads × {t} × {t} positions)", m.config.n_head),
        Holds::Logits => format!(" ({seqs} × {t} positions × {} tokens)", m.config.vocab_size),
        Holds::Activations => format!(" ({seqs} × {t} positions)"),
        Holds::Tokens => format!(" ({} micro-batches of {seqs} × {t} positions)", sizes.g),
        Holds::Programs => format!(" ({} micro-batches a step)", sizes.g),
        _ => String::new(),
    }
}

/// What a lab on a device is checked against: the device's limits, and
/// (where one is set: the page's labs) the memory a lab may take in all.
#[derive(Clone, Copy, Debug)]
pub struct DeviceBudget<'a> {
    pub limits: &'a wgpu::Limits,
    /// Bytes every run of a lab may hold together; None for no bound.
    pub memory: Option<u64>,
}

/// Checks a lab of `runs` against `budget` before anything is made: the
/// storage buffers a kernel binds, every buffer of every run against the
/// largest buffer and storage binding the device allows, the largest
/// dispatch's grid, and the runs' total against the memory budget. The
/// refusal names the settings to lower ("batch × seq_len: the full batch's
/// attention scores (…) need 1 GiB in one buffer; this GPU allows 128 MiB
/// …; lower the batch or the context").
pub fn check_lab(runs: &[RunConfig], budget: DeviceBudget<'_>) -> Result<(), ConfigError> {
    let limits = budget.limits;
    let needed = storage_buffers_needed();
    if needed > limits.max_storage_buffers_per_shader_stage {
        return Err(ConfigError::DeviceLimit {
            fields: "backend".into(),
            reason: format!(
                "gradlab's kernels bind up to {needed} storage buffers at once, this GPU allows {} \
                 (maxStorageBuffersPerShaderStage); use the CPU",
                limits.max_storage_buffers_per_shader_stage
            ),
        });
    }
    let plans = runs.iter().map(RunSizes::new).collect::<Result<Vec<_>, _>>()?;
    for (sizes, run) in plans.iter().zip(runs) {
        let whole = run.grad_accum == 1;
        let whose = if whole { "the full batch's" } else { "a micro-batch's" };
        // the largest first: the refusal names what is furthest past
        let mut buffers = sizes.buffers();
        buffers.sort_by_key(|p| std::cmp::Reverse(p.words));
        for p in buffers {
            let (fields, lower) = grows_with(p.holds, whole);
            let over = |bytes: u64, limit: u64, name: &str| ConfigError::DeviceLimit {
                fields: fields.into(),
                reason: format!(
                    "{whose} {}{} need {} in one buffer, this GPU allows {} per buffer ({name}); {lower}",
                    p.holds.what(),
                    shape(sizes, p.holds),
                    in_words(bytes),
                    in_words(limit),
                ),
            };
            let binding = p.binding as u64 * 4;
            if binding > limits.max_storage_buffer_binding_size {
                let limit = limits.max_storage_buffer_binding_size;
                return Err(over(binding, limit, "maxStorageBufferBindingSize"));
            }
            let bytes = if p.holds == Holds::Programs && p.label == "uniform arenas" {
                sizes.largest_arena() as u64 * 4
            } else if p.holds == Holds::Programs {
                0
            } else {
                p.bytes()
            };
            if bytes > limits.max_buffer_size {
                return Err(over(bytes, limits.max_buffer_size, "maxBufferSize"));
            }
        }
        // the products' rows: FEWEST_MATMUL_ROWS a workgroup along one dimension
        let groups = sizes.model.rows.div_ceil(FEWEST_MATMUL_ROWS);
        if groups > limits.max_compute_workgroups_per_dimension as usize {
            let (fields, lower) = grows_with(Holds::Activations, whole);
            return Err(ConfigError::DeviceLimit {
                fields: fields.into(),
                reason: format!(
                    "{whose} {} positions need {groups} workgroups along one dimension of a dispatch, \
                     this GPU allows {} (maxComputeWorkgroupsPerDimension); {lower}",
                    sizes.model.rows, limits.max_compute_workgroups_per_dimension
                ),
            });
        }
    }
    if let Some(memory) = budget.memory {
        let total: u64 = plans.iter().map(RunSizes::total_bytes).fold(0, u64::saturating_add);
        if total > memory {
            // what most of it is, and the settings that grow that
            let mut by_kind: Vec<(Holds, u64, bool)> = Vec::new();
            for (sizes, run) in plans.iter().zip(runs) {
                for p in sizes.buffers() {
                    let bytes = p.bytes().saturating_mul(p.copies as u64);
                    match by_kind.iter_mut().find(|(h, ..)| *h == p.holds) {
                        Some((_, sum, whole)) => {
                            *sum = sum.saturating_add(bytes);
                            *whole |= run.grad_accum == 1;
                        }
                        None => by_kind.push((p.holds, bytes, run.grad_accum == 1)),
                    }
                }
            }
            let (holds, most, whole) =
                by_kind.into_iter().max_by_key(|(_, b, _)| *b).unwrap_or((Holds::Small, 0, true));
            let (fields, lower) = grows_with(holds, whole);
            let runs = if runs.len() == 1 { "run".to_string() } else { format!("{} runs", runs.len()) };
            return Err(ConfigError::DeviceLimit {
                fields: fields.into(),
                reason: format!(
                    "the lab's {runs} need {} of GPU memory in all ({} of it {}), over the {} a lab may take on the GPU; {lower}",
                    in_words(total),
                    in_words(most),
                    holds.what(),
                    in_words(memory),
                ),
            });
        }
    }
    Ok(())
}

/// WebGPU's default limits: what every WebGPU adapter allows at least, and
/// what a lab is checked against where the adapter is not known (the
/// settings check, `lab::settings`).
pub fn webgpu_limits() -> wgpu::Limits {
    wgpu::Limits::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_a_person_says_them() {
        assert_eq!(in_words(1 << 30), "1 GiB");
        assert_eq!(in_words(3 << 29), "1.5 GiB");
        assert_eq!(in_words(300 << 20), "300 MiB");
        assert_eq!(in_words(12 << 10), "12 KiB");
        assert_eq!(in_words(100), "100 bytes");
    }
}
