//! The JavaScript API the page uses (wasm32 only): a thin shell over `lab`,
//! `playground` and `checkpoint`. The page draws and handles events; every
//! number it shows is computed here.
//!
//! Errors cross into JavaScript as `Error`s whose message names the field and
//! the problem, ready to show to the user.

use wasm_bindgen::prelude::*;

use crate::bench::MatmulCase;
use crate::checkpoint::from_safetensors;
use crate::cpu::CpuRun;
use crate::gpu::GpuContext;
use crate::gpu::GpuRun;
use crate::lab::settings::{steps_per_call, Compute, LabSettings};
use crate::lab::{AnyLab, Lab, LabConfig};
use crate::model::{ConfigError, ModelConfig, ParamLayout};
use crate::playground::{Method, Playground, PlaygroundSettings, Surface};

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn parse_settings(value: JsValue) -> Result<LabSettings, ConfigError> {
    LabSettings::deserialize_named(serde_wasm_bindgen::Deserializer::from(value))
}

/// Checks lab settings without building anything; returns the problem in
/// words, or undefined when they are fine.
#[wasm_bindgen(js_name = validateLabConfig)]
pub fn validate_lab_config(config: JsValue) -> Option<String> {
    let check = || -> Result<(), ConfigError> { parse_settings(config)?.resolve(Compute::Gpu).map(|_| ()) };
    check().err().map(|e| e.to_string())
}

/// The model presets, smallest first: [{name, vocab_size, block_size,
/// n_layer, n_head, n_embd, parameters}]. The page builds its choices from
/// this list instead of repeating it.
#[wasm_bindgen]
pub fn presets() -> Result<JsValue, JsError> {
    #[derive(serde::Serialize)]
    struct Preset {
        name: &'static str,
        #[serde(flatten)]
        config: ModelConfig,
        parameters: usize,
    }
    let list: Vec<Preset> = ModelConfig::PRESETS
        .iter()
        .map(|(name, make)| Preset { name, config: make(), parameters: ParamLayout::new(&make()).num_params })
        .collect();
    to_js(&list)
}

/// The shipped corpora, the default first: [{name, title, documents, files,
/// available}]. `files` lie in `data/corpus/`; where `available` is false the
/// page fetches them and hands them over (`provideCorpus`) before a lab uses
/// the corpus.
#[wasm_bindgen]
pub fn corpora() -> Result<JsValue, JsError> {
    #[derive(serde::Serialize)]
    struct Shipped {
        name: &'static str,
        title: &'static str,
        documents: &'static str,
        files: &'static [&'static str],
        available: bool,
    }
    let list = crate::data::CORPORA
        .iter()
        .map(|c| {
            let available = crate::data::corpus_available(c.name).map_err(js_err)?;
            Ok(Shipped { name: c.name, title: c.title, documents: c.documents, files: c.files, available })
        })
        .collect::<Result<Vec<_>, JsError>>()?;
    to_js(&list)
}

/// Hands over the text of shipped corpus `name`'s files (in the order
/// `corpora()` lists them), fetched by the page.
#[wasm_bindgen(js_name = provideCorpus)]
pub fn provide_corpus(name: &str, files: Vec<String>) -> Result<(), JsError> {
    crate::data::provide_corpus(name, files).map_err(js_err)
}

/// Whether shipped corpus `name` can be used now.
#[wasm_bindgen(js_name = corpusAvailable)]
pub fn corpus_available(name: &str) -> Result<bool, JsError> {
    crate::data::corpus_available(name).map_err(js_err)
}

/// A running accumulation lab, on WebGPU or on the f64 CPU reference.
#[wasm_bindgen]
pub struct WebLab {
    lab: Box<dyn AnyLab>,
    /// What the status line calls the backend.
    label: String,
    /// Why the GPU was not used, when it was not.
    gpu_problem: Option<String>,
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_err)
}

/// Held-out sequences each validation pass measures, on either backend.
const VALIDATION_SEQUENCES: usize = 16;

#[wasm_bindgen]
impl WebLab {
    /// Builds the lab on WebGPU, or on the CPU reference with the nano preset
    /// when `use_gpu` is false or WebGPU is unavailable. Every run starts
    /// from `weights` (safetensors bytes, see `checkWeights`) when given,
    /// else from a fresh init of `seed`.
    pub async fn create(config: JsValue, use_gpu: bool, weights: Option<Vec<u8>>) -> Result<WebLab, JsError> {
        let page = parse_settings(config).map_err(js_err)?;
        let lab_config = page.resolve(Compute::Gpu).map_err(js_err)?;
        let corpus = page.corpus().map_err(js_err)?;
        let start = |config: &LabConfig| -> Result<Vec<f32>, JsError> {
            let layout = ParamLayout::new(&config.model);
            match &weights {
                Some(bytes) => from_safetensors(&layout, bytes).map_err(|e| js_err(format!("weights: {e}"))),
                None => Ok(layout.init(config.seed)),
            }
        };
        let mut gpu_problem = Some("WebGPU is not available in this browser".to_string());
        if use_gpu {
            match GpuContext::new().await {
                Ok(ctx) => {
                    let init = start(&lab_config)?;
                    let lab = Lab::<GpuRun>::with_weights(&ctx, lab_config, corpus, &init).map_err(js_err)?;
                    let label = format!("WebGPU: {}", lab.describe());
                    return Ok(WebLab { lab: Box::new(lab), label, gpu_problem: None });
                }
                Err(e) => gpu_problem = Some(e.to_string()),
            }
        }
        let cpu_config = page.resolve(Compute::Cpu).map_err(js_err)?;
        let init = start(&cpu_config)?;
        let lab = Lab::<CpuRun>::with_weights(&(), cpu_config, corpus, &init).map_err(js_err)?;
        let label = "CPU (f64 reference, nano preset)".to_string();
        Ok(WebLab { lab: Box::new(lab), label, gpu_problem })
    }

    /// Whether safetensors `bytes` (our names or nanoGPT's) fit the model a
    /// lab of `config` builds on the GPU (`on_gpu`) or the CPU reference:
    /// the problem in words (the tensor and its shapes), or undefined. A
    /// longer position table than the context is fine: it is cropped.
    #[wasm_bindgen(js_name = checkWeights)]
    pub fn check_weights(config: JsValue, bytes: &[u8], on_gpu: bool) -> Option<String> {
        let check = || -> Result<(), String> {
            let page = parse_settings(config).map_err(|e| e.to_string())?;
            let compute = if on_gpu { Compute::Gpu } else { Compute::Cpu };
            let model = page.model(compute).map_err(|e| e.to_string())?;
            from_safetensors(&ParamLayout::new(&model), bytes).map(|_| ()).map_err(|e| e.to_string())
        };
        check().err()
    }

    /// The adapter (or "CPU") the lab runs on.
    pub fn backend(&self) -> String {
        self.label.clone()
    }

    /// Why the GPU this lab runs on was lost (the browser reset it, it was
    /// destroyed), or undefined. After a loss nothing more runs: build a new
    /// lab (the page's Recover).
    #[wasm_bindgen(js_name = deviceLost)]
    pub fn device_lost(&self) -> Option<String> {
        self.lab.device_lost()
    }

    #[wasm_bindgen(js_name = gpuProblem)]
    pub fn gpu_problem(&self) -> Option<String> {
        self.gpu_problem.clone()
    }

    /// The runs, in the order metrics use: [{strategy, micro_batch}], the
    /// full-batch reference first.
    pub fn runs(&self) -> Result<JsValue, JsError> {
        to_js(&self.lab.specs())
    }

    /// Model and batch actually in use: {preset fields..., batch, seq_len}.
    pub fn config(&self) -> Result<JsValue, JsError> {
        to_js(self.lab.config())
    }

    /// Takes `n` lockstep steps (a whole number, 1..=1000); returns the
    /// metrics that are ready (on the GPU they arrive a few steps late),
    /// oldest first.
    pub async fn step(&mut self, n: f64) -> Result<JsValue, JsError> {
        let n = steps_per_call(n).map_err(js_err)?;
        for _ in 0..n {
            self.lab.step().await.map_err(js_err)?;
        }
        to_js(&self.lab.poll().await.map_err(js_err)?)
    }

    /// Waits for every submitted step and returns the metrics not yet taken.
    pub async fn flush(&mut self) -> Result<JsValue, JsError> {
        to_js(&self.lab.flush().await.map_err(js_err)?)
    }

    pub fn steps(&self) -> f64 {
        self.lab.steps() as f64
    }

    /// Validation loss of every run on the held-out text.
    #[wasm_bindgen(js_name = validationLoss)]
    pub async fn validation_loss(&mut self) -> Result<Vec<f64>, JsError> {
        self.lab.validation_loss(VALIDATION_SEQUENCES).await.map_err(js_err)
    }

    /// Text generated by run `run` after `prompt`.
    pub async fn sample(
        &mut self,
        run: u32,
        prompt: String,
        new_tokens: u32,
        temperature: f64,
        seed: u32,
    ) -> Result<String, JsError> {
        let new_tokens = (new_tokens as usize).min(400);
        self.lab.generate(run as usize, &prompt, new_tokens, temperature, seed as u64).await.map_err(js_err)
    }

    /// The last step's batch and the weight each run gives each of its target
    /// tokens: {sequences, prompt_lengths, runs: [{strategy, micro_batch,
    /// weights[i][j] (token j+1 of sequence i; 0 = not a target)}]}, or
    /// undefined before the first step.
    #[wasm_bindgen(js_name = tokenWeights)]
    pub fn token_weights(&self) -> Result<JsValue, JsError> {
        match self.lab.token_weights() {
            Some(w) => to_js(&w),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// ‖W − W_full‖ of each trained tensor for every run (under LoRA each
    /// adapted Linear's merged weight): [{name, distances: [per run]}]. Reads
    /// every run's weights back, so the page asks now and then, not per step.
    #[wasm_bindgen(js_name = tensorDistances)]
    pub async fn tensor_distances(&self) -> Result<JsValue, JsError> {
        to_js(&self.lab.tensor_distances().await.map_err(js_err)?)
    }

    /// Run `run`'s weights as a safetensors file (GPT-2 names, float32;
    /// under LoRA the base with the adapters merged in).
    #[wasm_bindgen(js_name = weightsSafetensors)]
    pub async fn weights_safetensors(&self, run: u32) -> Result<Vec<u8>, JsError> {
        let weights = self.lab.weights(run as usize).await.map_err(js_err)?;
        let layout = ParamLayout::new(&self.lab.config().model);
        crate::checkpoint::to_safetensors(&layout, &weights, None).map_err(js_err)
    }
}

/// Optimizer trajectories on a 2-D surface, for the playground panel.
#[wasm_bindgen]
pub struct WebPlayground {
    inner: Playground,
}

#[wasm_bindgen]
impl WebPlayground {
    /// `settings`: {lr, momentum, beta1, beta2, noise}, missing fields default.
    #[wasm_bindgen(constructor)]
    pub fn new(surface: &str, settings: JsValue, x: f64, y: f64, seed: u32) -> Result<WebPlayground, JsError> {
        let surface: Surface = surface.parse().map_err(js_err)?;
        let settings: PlaygroundSettings = if settings.is_undefined() || settings.is_null() {
            PlaygroundSettings::default()
        } else {
            serde_wasm_bindgen::from_value(settings).map_err(|e| js_err(format!("playground settings: {e}")))?
        };
        Ok(WebPlayground { inner: Playground::new(surface, settings, [x, y], seed as u64).map_err(js_err)? })
    }

    pub fn step(&mut self, n: u32) {
        for _ in 0..n.min(10_000) {
            self.inner.step();
        }
    }

    /// Optimizer names, in trajectory order.
    pub fn names() -> Vec<String> {
        Method::ALL.iter().map(|m| m.name().to_string()).collect()
    }

    /// The path of trajectory `i` as [x0, y0, x1, y1, ...].
    pub fn path(&self, i: usize) -> Vec<f64> {
        self.inner.trajectories.get(i).map(|t| t.path.iter().flatten().copied().collect()).unwrap_or_default()
    }

    /// 1 for each trajectory that left the plot for good (learning rate too high).
    pub fn diverged(&self) -> Vec<u8> {
        self.inner.trajectories.iter().map(|t| u8::from(t.diverged)).collect()
    }

    /// Loss at each trajectory's current point.
    pub fn losses(&self) -> Vec<f64> {
        self.inner.trajectories.iter().map(|t| self.inner.surface.value(t.position[0], t.position[1])).collect()
    }

    /// f on an nx × ny grid over the surface's bounds, row-major from the bottom-left.
    pub fn grid(surface: &str, nx: usize, ny: usize) -> Result<Vec<f64>, JsError> {
        let s: Surface = surface.parse().map_err(js_err)?;
        Ok(s.grid(nx.clamp(2, 400), ny.clamp(2, 400)))
    }

    /// [x_min, x_max, y_min, y_max]
    pub fn bounds(surface: &str) -> Result<Vec<f64>, JsError> {
        let s: Surface = surface.parse().map_err(js_err)?;
        Ok(s.bounds().to_vec())
    }

    #[wasm_bindgen(js_name = defaultStart)]
    pub fn default_start(surface: &str) -> Result<Vec<f64>, JsError> {
        let s: Surface = surface.parse().map_err(js_err)?;
        Ok(s.default_start().to_vec())
    }
}

/// gradlab's matmul kernel on this page's GPU, for the benchmark page
/// (`www/bench.html`), which times it next to another library.
#[wasm_bindgen]
pub struct WebBench {
    ctx: GpuContext,
    cases: Vec<MatmulCase>,
}

#[wasm_bindgen]
impl WebBench {
    /// Opens a WebGPU device; fails with the reason when there is none.
    pub async fn create() -> Result<WebBench, JsError> {
        let ctx = GpuContext::new().await.map_err(js_err)?;
        Ok(Self { ctx, cases: Vec::new() })
    }

    /// The adapter, as "name (backend, device type)".
    pub fn adapter(&self) -> String {
        self.ctx.adapter.to_string()
    }

    /// Records out [m,n] = inp [m,k] · weightᵀ + bias on these operands
    /// (weight [n,k]) and returns the case's index for `run` and `output`.
    #[wasm_bindgen(js_name = addMatmul)]
    pub fn add_matmul(
        &mut self,
        m: u32,
        k: u32,
        n: u32,
        inp: &[f32],
        weight: &[f32],
        bias: &[f32],
    ) -> Result<u32, JsError> {
        let case = MatmulCase::new(&self.ctx, m as usize, k as usize, n as usize, inp, weight, bias).map_err(js_err)?;
        self.cases.push(case);
        Ok(self.cases.len() as u32 - 1)
    }

    fn case(&self, index: u32) -> Result<&MatmulCase, JsError> {
        self.cases.get(index as usize).ok_or_else(|| JsError::new(&format!("index: no matmul case {index}")))
    }

    /// Runs case `index` `times` times (1..=1000) in one submission; resolves
    /// once the GPU has finished.
    pub async fn run(&self, index: u32, times: u32) -> Result<(), JsError> {
        if !(1..=1000).contains(&times) {
            return Err(JsError::new(&format!("times: must be 1..=1000, got {times}")));
        }
        self.case(index)?.run(&self.ctx, times as usize).await.map_err(js_err)
    }

    /// The last result of case `index`, [m,n] row-major.
    pub async fn output(&self, index: u32) -> Result<Vec<f32>, JsError> {
        self.case(index)?.output(&self.ctx).await.map_err(js_err)
    }
}
