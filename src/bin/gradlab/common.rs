//! What several commands share: the lab's arguments, loading a corpus, and
//! writing files with the path in the error.

use std::sync::Arc;

use gradlab::data::{Corpus, Packing};
use gradlab::lab::experiment::REFERENCE;
use gradlab::lab::{Backend, LabConfig};
use gradlab::model::{LoraConfig, LoraTarget, ModelConfig};

pub type AnyError = Box<dyn std::error::Error>;

/// The lab's data and model, shared by `sweep`, `pretrain` and `export-grads`; the
/// defaults are the reference experiment's (`lab::experiment`) but for the
/// context, the preset's own unless `--ctx` asks.
#[derive(clap::Args)]
pub struct LabArgs {
    /// Model size: nano, micro or small.
    #[arg(long, default_value = REFERENCE.preset)]
    pub preset: String,
    /// T: the model's context (its position table), instead of the preset's;
    /// whole documents are cut only past T+1 tokens.
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Effective batch B (sequences per optimizer step).
    #[arg(long, default_value_t = REFERENCE.batch)]
    pub batch: usize,
    /// Sequence-length spread: 0 = all full length (no padding), 1 = widely varying.
    #[arg(long, default_value_t = REFERENCE.spread)]
    pub spread: f64,
    /// Seeds the weights and every batch.
    #[arg(long, default_value_t = REFERENCE.first_seed)]
    pub seed: u64,
    /// A shipped corpus: kjv (verses, reference as prompt) or devil (The
    /// Devil's Dictionary, headword as prompt).
    #[arg(long, default_value = REFERENCE.corpus)]
    pub corpus: String,
    /// Train on this UTF-8 file instead (documents split on blank lines).
    #[arg(long, conflicts_with = "corpus")]
    pub text: Option<std::path::PathBuf>,
    /// padded: one document per sequence, right-padded (fine-tuning);
    /// packed: documents concatenated into full windows (pretraining).
    #[arg(long, default_value = "padded")]
    pub packing: String,
    /// Fine-tuning: the documents' prompts are not targets.
    #[arg(long)]
    pub mask_prompt: bool,
    /// Simulated data-parallel ranks, each accumulating its share of the
    /// micro-batches (adds a `local` run when above 1).
    #[arg(long, default_value_t = 1)]
    pub ranks: usize,
    #[command(flatten)]
    pub lora: LoraArgs,
}

impl LabArgs {
    /// The preset, with `--ctx` as its context when given.
    pub fn model(&self) -> Result<ModelConfig, AnyError> {
        let mut model = ModelConfig::preset(&self.preset)?;
        if let Some(ctx) = self.ctx {
            model.block_size = ctx;
            model.validate().map_err(|e| format!("--ctx: {e}"))?;
        }
        Ok(model)
    }

    /// The corpus to train on and its name for reports.
    pub fn corpus(&self) -> Result<(Arc<Corpus>, String), AnyError> {
        match &self.text {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| format!("--text {}: {e}", path.display()))?;
                let corpus = Corpus::from_bytes(&bytes).map_err(|e| format!("--text {}: {e}", path.display()))?;
                Ok((Arc::new(corpus), path.display().to_string()))
            }
            None => {
                let shipped = gradlab::data::shipped(&self.corpus).map_err(|e| format!("--corpus: {e}"))?;
                Ok((Arc::new(gradlab::data::shipped_corpus(shipped.name)?), shipped.title.to_string()))
            }
        }
    }

    /// `base` (runs and model) with this lab's data, ranks and seed settings.
    pub fn apply(&self, mut base: LabConfig) -> Result<LabConfig, AnyError> {
        base.packing = self.packing.parse::<Packing>()?;
        base.mask_prompt = self.mask_prompt;
        base.lora = self.lora.config(self.seed)?;
        let config = base.with_ranks(self.ranks);
        config.validate()?;
        Ok(config)
    }
}

/// LoRA's settings, shared by every command that trains.
#[derive(clap::Args)]
pub struct LoraArgs {
    /// Fine-tune LoRA adapters of this rank on the starting weights, which stay frozen.
    #[arg(long = "lora", value_name = "R")]
    pub rank: Option<usize>,
    /// LoRA's α (the update is scaled by α/r); default 2r.
    #[arg(long = "lora-alpha", requires = "rank")]
    pub alpha: Option<f64>,
    /// The Linear layers that get adapters, comma-separated from attn,
    /// attn_proj, fc, fc_proj.
    #[arg(long = "lora-targets", requires = "rank", default_value = "attn,attn_proj,fc,fc_proj")]
    pub targets: String,
}

impl LoraArgs {
    /// The adapters asked for, A's init seeded by `seed`; None without `--lora`.
    pub fn config(&self, seed: u64) -> Result<Option<LoraConfig>, AnyError> {
        let Some(rank) = self.rank else { return Ok(None) };
        let targets = self
            .targets
            .split(',')
            .map(|t| LoraTarget::parse(t.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--lora-targets: {e}"))?;
        let alpha = self.alpha.unwrap_or(2.0 * rank as f64);
        let lora = LoraConfig { rank, alpha, targets: LoraConfig::target_bits(&targets), seed };
        Ok(Some(lora))
    }
}

/// Weights from a safetensors file (ours or nanoGPT's names) for `model`,
/// the file and `--init` named in any error.
pub fn read_weights(path: &std::path::Path, model: &ModelConfig) -> Result<Vec<f32>, AnyError> {
    let bytes = std::fs::read(path).map_err(|e| format!("--init {}: {e}", path.display()))?;
    let layout = gradlab::model::ParamLayout::new(model);
    Ok(gradlab::checkpoint::from_safetensors(&layout, &bytes).map_err(|e| format!("--init {}: {e}", path.display()))?)
}

/// `--backend` by name; an old spelling is taken and named on stderr.
pub fn backend(name: &str) -> Result<Backend, AnyError> {
    let (backend, note) = Backend::parse(name).map_err(|e| format!("--{e}"))?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Ok(backend)
}

pub fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), AnyError> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()).into())
}

/// `job(i)` for i in 0..n on threads of their own, as many at a time as the
/// machine has cores (the seeds of a sweep, a scenario or the seed figures
/// are independent), the results in order; the first failure is returned.
pub fn each_in_parallel<T: Send>(
    n: usize,
    job: impl Fn(usize) -> Result<T, String> + Sync,
) -> Result<Vec<T>, AnyError> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()).max(1);
    let mut results = Vec::with_capacity(n);
    for first in (0..n).step_by(cores) {
        let job = &job;
        let chunk: Vec<Result<T, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (first..n.min(first + cores)).map(|i| scope.spawn(move || job(i))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into()))).collect()
        });
        for r in chunk {
            results.push(r?);
        }
    }
    Ok(results)
}
