//! Lab settings as they arrive from JavaScript (the wasm API, element
//! attributes, the URL — all turned into one object by the page): the one
//! place they are parsed and checked, with a bound on the work one lab step
//! may ask for. Native code builds `LabConfig` directly; this layer exists so
//! a page cannot ask for a lab that would freeze the tab, and so it can be
//! tested natively (tests/settings.rs fuzzes it).

use std::sync::Arc;

use serde::Deserialize;

use super::config::LabConfig;
pub use super::Backend;
use crate::data::{Corpus, Packing};
use crate::gpu::plan::{check_lab, DeviceBudget};
use crate::model::{ConfigError, LoraConfig, ModelConfig, ParamLayout};
use crate::optim::OptimizerConfig;
use crate::strict::Tree;

/// What the page asks for; missing fields take the defaults below, unknown
/// fields are refused by name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabSettings {
    pub preset: String,
    pub batch: usize,
    pub micro_batch: usize,
    pub spread: f64,
    /// Positions per sequence; 0 means the preset's block size. Above it,
    /// the model's context (its position table) grows to match, as the
    /// CLI's `--ctx` does: whole documents only fit a long enough context.
    pub seq_len: usize,
    pub optimizer: OptimizerConfig,
    pub seed: u64,
    /// Compare at every micro-batch size (the reference experiment) instead of one.
    pub sweep: bool,
    /// A shipped corpus by name (`data::CORPORA`).
    pub corpus: String,
    /// User text to train on instead of a shipped corpus.
    pub text: Option<String>,
    /// One document per sequence, padded, or packed full windows.
    pub packing: Packing,
    /// Fine-tuning: prompts are not targets.
    pub mask_prompt: bool,
    /// Simulated data-parallel ranks.
    pub ranks: usize,
    /// LoRA rank r: 0 trains every weight; above 0 the starting weights are
    /// frozen and adapters of this rank (α = 2r, on all four Linears) train.
    pub lora_rank: usize,
}

impl Default for LabSettings {
    fn default() -> Self {
        Self {
            preset: "nano".into(),
            batch: 8,
            micro_batch: 2,
            spread: 1.0,
            seq_len: 0,
            optimizer: OptimizerConfig::default(),
            seed: 1,
            sweep: false,
            corpus: "kjv".into(),
            text: None,
            packing: Packing::Padded,
            mask_prompt: false,
            ranks: 1,
            lora_rank: 0,
        }
    }
}

/// A lab's work budget depends on its backend; the f64 reference always
/// builds the `nano` preset (`LabSettings::model`).
impl Backend {
    /// Floating-point operations one lab step may ask for here.
    pub fn work_budget(self) -> f64 {
        match self {
            Backend::Gpu => GPU_WORK_BUDGET,
            Backend::Cpu => CPU_WORK_BUDGET,
            Backend::Reference => REFERENCE_WORK_BUDGET,
        }
    }

    fn place(self) -> &'static str {
        match self {
            Backend::Gpu => "the GPU",
            Backend::Cpu | Backend::Reference => "the CPU",
        }
    }
}

/// Floating-point operations one lab step may ask for: `work_per_step`, runs
/// x B x T x parameters x 6, with B the effective batch (sequences per
/// optimizer step) and T the context. The GPU's admits the largest preset at
/// the page's largest B and T: the G sweep of `small` at B = 32, T = 256 (11
/// runs: the full batch, and naive and corrected at micro-batch b = 1, 2, 4,
/// 8, 16) is about 1.5e12; with 2 ranks, whose local runs make 16, it is
/// refused (2.2e12). It refuses what no adapter steps interactively. The f64
/// reference's (always `nano`) admits a three-run lab at B = 32, T = 128
/// (about 9.2e9) and the page's default B = 8 at its longest T = 256 (4.9e9);
/// it refuses B = 32 at T = 256 (2.0e10): thousands of sequences of the
/// reference took the page seconds per step at a fraction of that.
/// tests/settings.rs checks these figures.
pub const GPU_WORK_BUDGET: f64 = 2e12;
pub const REFERENCE_WORK_BUDGET: f64 = 1e10;
/// The f32 CPU backend's: three runs of the `micro` preset at B = 16 and
/// T = 64 (about 1.6e10; at B = 32, 3.1e10, refused), a few times the f64
/// reference's reach.
pub const CPU_WORK_BUDGET: f64 = 3e10;

/// Bytes of GPU memory every run of one lab may hold together (buffers,
/// and a bound on what their recorded programs make: `gpu::plan`). A
/// browser does not say how much memory its GPU has, and a lab past it
/// failed inside the GPU ("Invalid Buffer att") instead of here: this admits
/// the largest lab the work budget admits on the GPU (the G sweep of `small`
/// at B = 32, T = 256: 11 runs, 4.3 GiB; the page's own settings make at
/// most `small` at B = b = 32, T = 256: three runs, 3.3 GiB) and refuses
/// the `nano` preset at T = 4096 (5.4 GiB, 4.5 GiB of it attention scores),
/// which the work budget admits. tests/limits.rs checks these figures.
pub const GPU_MEMORY_BUDGET: u64 = 9 << 29;

/// Lab steps one call may take: each is awaited, but a call is one
/// uninterrupted stretch for the page.
pub const MAX_STEPS_PER_CALL: u32 = 1000;

/// Estimated floating-point operations of one lab step: forward and
/// backward (about 6 per parameter per position) of every run over every
/// position of the batch.
pub fn work_per_step(config: &LabConfig) -> f64 {
    let params = ParamLayout::new(&config.model).num_params as f64;
    let runs = config.all_runs().len() as f64;
    runs * config.batch as f64 * config.seq_len as f64 * params * 6.0
}

/// A step count from JavaScript: a whole number from 1 to `MAX_STEPS_PER_CALL`.
pub fn steps_per_call(n: f64) -> Result<u32, ConfigError> {
    if !(n.is_finite() && n.fract() == 0.0 && (1.0..=MAX_STEPS_PER_CALL as f64).contains(&n)) {
        return Err(ConfigError::Invalid {
            field: "steps",
            reason: format!(
                "must be a whole number from 1 to {MAX_STEPS_PER_CALL}, got {}",
                crate::model::config::short(n)
            ),
        });
    }
    Ok(n as u32)
}

/// Tokens one `sample` call may generate.
pub const MAX_SAMPLE_TOKENS: u64 = 400;

/// A count or seed from JavaScript: a whole number from 0 to `max`, taken as
/// given (-1 is refused as -1, not wrapped to 4294967295; NaN is not 0).
pub fn whole_in(field: &'static str, x: f64, max: u64) -> Result<u64, ConfigError> {
    if !(x.is_finite() && x.fract() == 0.0 && x >= 0.0 && x <= max as f64) {
        return Err(ConfigError::Invalid {
            field,
            reason: format!("must be a whole number from 0 to {max}, got {}", as_given(x)),
        });
    }
    Ok(x as u64)
}

/// A number from JavaScript as the caller wrote it: a whole number in full
/// (4294967295, not 4.29497e9), anything else short.
fn as_given(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        crate::model::config::short(x)
    }
}

/// A run of a lab of `runs` runs, as JavaScript names it: a whole number
/// from 0 to runs − 1. A number is taken as given, so -1 is said as -1 (not
/// wrapped to 4294967295), NaN and 1.5 are refused, not read as 0 and 1.
pub fn run_index(run: f64, runs: usize) -> Result<usize, ConfigError> {
    let have = match runs {
        0 => "this lab has no runs".to_string(),
        1 => "this lab has one run, 0".to_string(),
        n => format!("this lab has runs 0 to {}", n - 1),
    };
    let shown = as_given(run);
    if !(run.is_finite() && run.fract() == 0.0) {
        return Err(ConfigError::Invalid {
            field: "run",
            reason: format!("must be a whole number, got {shown} ({have})"),
        });
    }
    if run < 0.0 || run >= runs as f64 {
        return Err(ConfigError::Invalid { field: "run", reason: format!("{shown} is not a run ({have})") });
    }
    Ok(run as usize)
}

impl LabSettings {
    /// Parses settings from JSON (natively; the page's JavaScript object
    /// arrives as a `Tree` the same way, `web::parse_settings`). Errors name
    /// the field; a key that is no setting is refused with the nearest one.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ConfigError> {
        Self::deserialize_named(value)
    }

    /// Deserialises from any serde source (a JSON value), every key checked
    /// (`strict`), naming the field a problem is in.
    pub fn deserialize_named<'de, D: serde::Deserializer<'de>>(source: D) -> Result<Self, ConfigError>
    where
        D::Error: std::fmt::Display,
    {
        let tree =
            Tree::deserialize(source).map_err(|e| ConfigError::Invalid { field: "settings", reason: e.to_string() })?;
        Self::from_tree(tree)
    }

    /// The settings in `tree`, every key checked against `LabSettings`'s
    /// fields and the optimizer's: "settings: seqlen is not a lab setting;
    /// did you mean seq_len?".
    pub fn from_tree(tree: Tree) -> Result<Self, ConfigError> {
        crate::strict::read(tree, "lab setting").map_err(|reason| ConfigError::Invalid { field: "settings", reason })
    }

    /// The model: the preset (nano on the f64 reference), its context grown to
    /// `seq_len` when that is longer.
    pub fn model(&self, backend: Backend) -> Result<ModelConfig, ConfigError> {
        let mut model = match backend {
            Backend::Gpu | Backend::Cpu => ModelConfig::preset(&self.preset)?,
            // nano whatever the preset, but a preset that does not exist is still refused
            Backend::Reference => ModelConfig::preset(&self.preset).map(|_| ModelConfig::nano())?,
        };
        if self.seq_len > model.block_size {
            model.block_size = self.seq_len;
            model.validate()?;
        }
        Ok(model)
    }

    /// The lab to build on `backend`, checked: every field in range, the data
    /// as asked for possible, one step within the work budget and, on the
    /// GPU, every buffer within WebGPU's default limits (what every adapter
    /// allows) and the lab within `GPU_MEMORY_BUDGET` (`resolve_on` checks
    /// against an adapter's own limits).
    pub fn resolve(&self, backend: Backend) -> Result<LabConfig, ConfigError> {
        self.resolve_on(backend, &crate::gpu::plan::webgpu_limits())
    }

    /// `resolve`, a lab on the GPU checked against `gpu`, the limits of the
    /// adapter it will run on: every buffer it will make (`gpu::plan`), the
    /// largest dispatch, and the memory of all its runs, before anything is
    /// made. A lab past one is refused naming the settings to lower and the
    /// limit ("batch × seq_len: the full batch's attention scores (…) need
    /// 1 GiB in one buffer, this GPU allows 128 MiB per buffer …"). The CPU
    /// backends are not held to a GPU's limits.
    pub fn resolve_on(&self, backend: Backend, gpu: &wgpu::Limits) -> Result<LabConfig, ConfigError> {
        // the page's numbers are f64: a larger seed would not come back from
        // the lab's config (or its state) as the seed it was built with
        const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
        if self.seed > MAX_SAFE_INTEGER {
            return Err(ConfigError::Invalid {
                field: "seed",
                reason: format!(
                    "{} is above 2^53 - 1 = {MAX_SAFE_INTEGER}, the largest integer a JavaScript number holds exactly",
                    self.seed
                ),
            });
        }
        let model = self.model(backend)?;
        let mut c = if self.sweep {
            LabConfig::sweep(model, self.batch, self.spread, self.seed)
        } else {
            LabConfig::three_way(model, self.batch, self.micro_batch, self.spread, self.seed)
        };
        c.optimizer = self.optimizer;
        if self.seq_len > 0 {
            c.seq_len = self.seq_len;
        }
        c.packing = self.packing;
        c.mask_prompt = self.mask_prompt;
        c.lora = (self.lora_rank > 0).then(|| LoraConfig::all_layers(self.lora_rank, self.seed));
        let c = c.with_ranks(self.ranks);
        c.validate()?;
        self.check_data()?;
        let (work, budget) = (work_per_step(&c), backend.work_budget());
        if work > budget {
            return Err(ConfigError::Invalid {
                field: "batch",
                reason: format!(
                    "{} runs of {} sequences x {} positions of a {}-parameter model is about {:.1e} operations per step, over the {:.0e} this page allows on {}; use a smaller batch, context or model",
                    c.all_runs().len(),
                    c.batch,
                    c.seq_len,
                    ParamLayout::new(&c.model).num_params,
                    work,
                    budget,
                    backend.place()
                ),
            });
        }
        if backend == Backend::Gpu {
            let budget = DeviceBudget { limits: gpu, memory: Some(GPU_MEMORY_BUDGET) };
            check_lab(&c.run_configs(), budget)?;
        }
        Ok(c)
    }

    /// What can be said of the data without loading it: a shipped corpus
    /// that exists, and prompts to mask only where there are some.
    fn check_data(&self) -> Result<(), ConfigError> {
        if self.text.is_none() {
            crate::data::shipped(&self.corpus)?;
        }
        if self.text.is_some() && self.mask_prompt {
            return Err(ConfigError::Invalid {
                field: "mask_prompt",
                reason: "pasted text has no prompts to mask; use a shipped corpus".into(),
            });
        }
        Ok(())
    }

    /// The text to train on: the pasted one, or the shipped corpus.
    pub fn corpus(&self) -> Result<Arc<Corpus>, ConfigError> {
        Ok(Arc::new(match &self.text {
            Some(t) => Corpus::from_text(t)?,
            None => crate::data::shipped_corpus(&self.corpus)?,
        }))
    }
}
