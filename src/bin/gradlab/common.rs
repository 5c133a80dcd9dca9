//! What several commands share: the lab's arguments, loading a corpus, and
//! writing files with the path in the error.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use gradlab::data::{Corpus, Packing};
use gradlab::lab::experiment::REFERENCE;
use gradlab::lab::{Backend, Lab, LabConfig};
use gradlab::model::{AdapterLayout, LoraConfig, LoraTarget, ModelConfig, ParamLayout};
use pollster::block_on;
use safetensors::SafeTensors;

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
    /// Start the adapters from this file (safetensors under PEFT's names
    /// `h.{i}.<module>.lora_A` / `lora_B`, as `train --save-adapters`,
    /// `sweep --save-weights` and `export-grads` write them) instead of A's
    /// seeded init and B = 0; its rank, α, targets and shapes must be the
    /// run's and every value finite.
    #[arg(long, value_name = "FILE", requires = "rank")]
    pub adapters: Option<std::path::PathBuf>,
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

/// Adapters read from a file (`--adapters`): their values, flat
/// `AdapterLayout`, and the optimizer steps behind them (the file's `steps`,
/// 0 where it has none).
pub struct SavedAdapters {
    pub values: Vec<f32>,
    pub steps: u64,
}

impl LoraArgs {
    /// The starting adapters `--adapters` names for a run of `lora` on
    /// `model`; None without the flag (the adapters start at their init).
    pub fn start(&self, model: &ModelConfig, lora: Option<LoraConfig>) -> Result<Option<SavedAdapters>, AnyError> {
        match (&self.adapters, lora) {
            (Some(path), Some(lora)) => {
                let layout = AdapterLayout::new(&ParamLayout::new(model), lora)?;
                Ok(Some(read_adapters(path, &layout)?))
            }
            (Some(_), None) => Err("--adapters needs --lora R".into()),
            (None, _) => Ok(None),
        }
    }
}

/// Reads the adapters of `layout` from the safetensors file at `path`,
/// refusing, with `--adapters`, the file and the tensor named, a file that
/// cannot be read, adapters of another rank, α or set of layers than the
/// run's (from the file's `lora_rank`, `lora_alpha` and `lora_targets` where
/// it has them, and from its tensors' names and shapes), a tensor missing,
/// of another shape or type, and any value that is NaN or infinite.
pub fn read_adapters(path: &Path, layout: &AdapterLayout) -> Result<SavedAdapters, AnyError> {
    let at = |e: String| -> AnyError { format!("--adapters {}: {e}", path.display()).into() };
    let bytes = std::fs::read(path).map_err(|e| at(e.to_string()))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| at(format!("not a safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| at(format!("not a safetensors file ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let lora = &layout.lora;
    let keys = |targets: &[LoraTarget]| targets.iter().map(|t| t.key()).collect::<Vec<_>>().join(",");
    // the rank first, from the metadata or any A's rows, so that a file of
    // another rank is told as such rather than as a shape
    let rank = match meta.get("lora_rank") {
        Some(r) => Some((
            r.parse::<usize>().map_err(|_| at(format!("its lora_rank {r:?} is not a rank")))?,
            "its lora_rank".to_string(),
        )),
        None => {
            let mut names = file.names();
            names.sort();
            names.into_iter().filter(|n| n.ends_with(".lora_A")).find_map(|n| {
                let shape = file.tensor(n).ok()?.shape().to_vec();
                (shape.len() == 2).then(|| (shape[0], format!("tensor {n} has shape {shape:?}")))
            })
        }
    };
    if let Some((rank, why)) = rank {
        if rank != lora.rank {
            return Err(at(format!("the adapters are of rank {rank} ({why}); --lora asks for rank {}", lora.rank)));
        }
    }
    if let Some(a) = meta.get("lora_alpha") {
        let alpha: f64 = a.parse().map_err(|_| at(format!("its lora_alpha {a:?} is not a number")))?;
        if alpha != lora.alpha {
            return Err(at(format!(
                "the adapters were trained with lora_alpha {alpha}; this run's α is {} (--lora-alpha; the update is scaled by α/r)",
                lora.alpha
            )));
        }
    }
    if let Some(t) = meta.get("lora_targets") {
        let theirs = t
            .split(',')
            .map(|k| LoraTarget::parse(k.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| at(format!("its lora_targets: {e}")))?;
        if LoraConfig::target_bits(&theirs) != lora.targets {
            return Err(at(format!(
                "the adapters sit on {}; --lora-targets asks for {}",
                keys(&theirs),
                keys(&lora.targets())
            )));
        }
    }
    // an adapter the run does not have would be dropped without a word
    let ours: Vec<String> = layout.tensors().into_iter().map(|t| t.name.clone()).collect();
    let mut names = file.names();
    names.sort();
    if let Some(extra) = names.into_iter().find(|n| n.contains(".lora_") && !ours.iter().any(|o| o == *n)) {
        return Err(at(format!(
            "tensor {extra} is not one of this run's adapters ({} layers; --lora-targets {})",
            layout.linears.len() / lora.targets().len().max(1),
            keys(&lora.targets())
        )));
    }
    let values = gradlab::checkpoint::adapters_from_safetensors(layout, &bytes).map_err(|e| match e {
        gradlab::checkpoint::CheckpointError::File(reason) => at(reason),
        other => at(other.to_string()),
    })?;
    for t in layout.tensors() {
        if let Some(i) = values[t.range()].iter().position(|x| !x.is_finite()) {
            let cols = t.shape.last().copied().unwrap_or(1).max(1);
            let value = values[t.offset + i];
            return Err(at(format!(
                "tensor {} holds {value} at [{}, {}]; every value must be finite",
                t.name,
                i / cols,
                i % cols
            )));
        }
    }
    let steps = match meta.get("steps") {
        Some(s) => s.parse().map_err(|_| at(format!("its steps {s:?} is not a count")))?,
        None => 0,
    };
    Ok(SavedAdapters { values, steps })
}

/// The adapters of `layout` as a safetensors file (`adapters_to_safetensors`:
/// PEFT's names, rank, α and targets in the metadata) with the optimizer
/// `steps` behind them and whatever else `meta` adds; `--adapters` reads it.
pub fn adapters_file(
    layout: &AdapterLayout,
    values: &[f32],
    steps: u64,
    meta: &[(&str, String)],
) -> Result<Vec<u8>, AnyError> {
    let mut metadata: HashMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    metadata.insert("steps".into(), steps.to_string());
    Ok(gradlab::checkpoint::adapters_to_safetensors(layout, values, Some(metadata))?)
}

/// Puts `adapters` into every run of `lab` (before its first step): the
/// runs start from them, their optimizers fresh.
pub fn start_lab_adapters(lab: &mut Lab, adapters: &[f32]) -> Result<(), AnyError> {
    let mut state = block_on(lab.state())?;
    for run in &mut state.runs {
        run.adapters = Some(adapters.iter().map(|&x| f64::from(x)).collect());
    }
    block_on(lab.restore(&state))?;
    Ok(())
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
