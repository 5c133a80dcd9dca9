//! The JavaScript API the page uses (wasm32 only): a thin shell over `lab`
//! and `playground`, a lab's state as typed arrays (`state`), and in the
//! module's full build the file codecs (`files`). The page draws and handles
//! events; every number it shows is computed here.
//!
//! Errors cross into JavaScript as `Error`s whose message names the field and
//! the problem, ready to show to the user.

use std::cell::{Cell, RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;

use wasm_bindgen::prelude::*;

#[cfg(feature = "rarely-used")]
use crate::cpu::CpuRun;
use crate::cpu::FastCpuRun;
use crate::data::Corpus;
use crate::gpu::GpuContext;
use crate::gpu::GpuRun;
use crate::lab::settings::{steps_per_call, Compute, LabSettings};
use crate::lab::{Lab, LabConfig, RunSpec};
use crate::model::{ConfigError, ModelConfig, ParamLayout};
use crate::playground::{Method, Playground, PlaygroundSettings, Surface};

mod experiment;
#[cfg(feature = "rarely-used")]
mod files;
pub mod state;

#[cfg(feature = "rarely-used")]
pub use files::{decode_state, decode_weights, encode_state, encode_weights};
/// The threads build's `initThreadPool(threads)`: starts rayon's pool on as
/// many Web Workers sharing this module's memory (www/wasm.js
/// loadGradlabThreads), before any lab is built.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

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

/// Checks lab settings for a lab on `backend` (as for `WebLab.create`;
/// WebGPU when left out) without building anything; returns the problem in
/// words, or undefined when they are fine.
#[wasm_bindgen(js_name = validateLabConfig)]
pub fn validate_lab_config(config: JsValue, backend: Option<JsValue>) -> Option<String> {
    let check = || -> Result<(), ConfigError> {
        let compute = backend.as_ref().map_or(Ok(Compute::Gpu), parse_backend)?;
        parse_settings(config)?.resolve(compute).map(|_| ())
    };
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

/// A running accumulation lab, on WebGPU, on the f32 CPU backend or on the
/// f64 CPU reference.
///
/// Calls may come in any order without harm. An async call holds the lab
/// until it settles; a call made meanwhile is refused with an error naming
/// both (await each call before the next — the page chains them). `free()`
/// is always safe: a call in flight keeps the lab alive until it settles,
/// then the lab and its GPU buffers are dropped.
#[wasm_bindgen]
pub struct WebLab {
    cell: Rc<LabCell>,
}

struct LabCell {
    lab: RefCell<Lab>,
    /// The call holding the lab, for the error a second call gets.
    busy: Cell<Option<&'static str>>,
    /// Steps taken, readable while a call holds the lab.
    steps: Cell<u64>,
    specs: Vec<RunSpec>,
    config: LabConfig,
    /// What the status line calls the backend.
    label: String,
    /// Why the GPU was not used, when it was not.
    gpu_problem: Option<String>,
    on_gpu: bool,
}

/// The lab, held by one call; lets go (and says so) when dropped.
struct Held<'a> {
    lab: RefMut<'a, Lab>,
    busy: &'a Cell<Option<&'static str>>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.busy.set(None);
    }
}

impl LabCell {
    fn busy_error(&self, call: &str) -> JsError {
        let holder = self.busy.get().unwrap_or("another call");
        JsError::new(&format!(
            "lab: {call}() was called while {holder}() is still running; await each call before making the next"
        ))
    }

    /// The lab for call `call`, or the error saying which call holds it.
    fn hold(&self, call: &'static str) -> Result<Held<'_>, JsError> {
        let lab = self.lab.try_borrow_mut().map_err(|_| self.busy_error(call))?;
        self.busy.set(Some(call));
        Ok(Held { lab, busy: &self.busy })
    }

    /// The lab for a synchronous look, if no call holds it.
    fn look(&self, call: &'static str) -> Result<std::cell::Ref<'_, Lab>, JsError> {
        self.lab.try_borrow().map_err(|_| self.busy_error(call))
    }
}

/// Runs `call` on the lab as a promise that owns what it needs, so the
/// JavaScript object is never borrowed past the call that starts it.
fn on_lab<F, Fut>(cell: &Rc<LabCell>, name: &'static str, call: F) -> js_sys::Promise
where
    F: FnOnce(Rc<LabCell>) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<JsValue, JsError>> + 'static,
{
    let cell = cell.clone();
    wasm_bindgen_futures::future_to_promise(async move {
        // refused at once, before anything runs
        drop(cell.hold(name)?);
        call(cell).await.map_err(JsValue::from)
    })
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_err)
}

/// The page's one GPU device: every lab on the page (several embedded
/// elements, the sweep's labs) runs on it, so the kernels compile once and
/// the browser holds one device. A lost device is replaced by the next lab
/// that asks; labs still on the old one report the loss.
enum SharedGpu {
    Closed,
    /// Being opened; these labs wait for it.
    Opening(Vec<futures_channel::oneshot::Sender<Result<GpuContext, String>>>),
    Open(Box<GpuContext>),
}

thread_local! {
    static SHARED_GPU: RefCell<SharedGpu> = const { RefCell::new(SharedGpu::Closed) };
}

/// The page's device for one more lab (`GpuContext::share`), opened on first
/// use; the error says why there is none.
async fn shared_gpu() -> Result<GpuContext, String> {
    enum Next {
        Ready(Box<GpuContext>),
        Wait(futures_channel::oneshot::Receiver<Result<GpuContext, String>>),
        Open,
    }
    let next = SHARED_GPU.with(|shared| {
        let mut shared = shared.borrow_mut();
        match &mut *shared {
            SharedGpu::Open(ctx) if ctx.lost().is_none() => Next::Ready(Box::new(ctx.share())),
            SharedGpu::Opening(waiting) => {
                let (tx, rx) = futures_channel::oneshot::channel();
                waiting.push(tx);
                Next::Wait(rx)
            }
            _ => {
                *shared = SharedGpu::Opening(Vec::new());
                Next::Open
            }
        }
    });
    match next {
        Next::Ready(ctx) => Ok(*ctx),
        Next::Wait(rx) => {
            rx.await.unwrap_or_else(|_| Err("opening the GPU device was abandoned".into())).map(|ctx| ctx.share())
        }
        Next::Open => {
            let opened = GpuContext::new().await.map_err(|e| e.to_string());
            let waiting = SHARED_GPU.with(|shared| {
                let now = match &opened {
                    Ok(ctx) => SharedGpu::Open(Box::new(ctx.unlisted())),
                    // the next lab tries again
                    Err(_) => SharedGpu::Closed,
                };
                match shared.replace(now) {
                    SharedGpu::Opening(waiting) => waiting,
                    _ => Vec::new(),
                }
            });
            for tx in waiting {
                // a waiter that went away needs no answer
                let _ = tx.send(opened.clone());
            }
            opened.map(|ctx| ctx.share())
        }
    }
}

/// The backend `WebLab.create` was asked for: "webgpu", "cpu" or
/// "reference"; `true` and `false`, as older callers pass, are "webgpu" and
/// "reference".
fn parse_backend(backend: &JsValue) -> Result<Compute, ConfigError> {
    if let Some(gpu) = backend.as_bool() {
        return Ok(if gpu { Compute::Gpu } else { Compute::Cpu });
    }
    match backend.as_string().as_deref() {
        Some("webgpu") => Ok(Compute::Gpu),
        Some("cpu") => Ok(Compute::CpuF32),
        Some("reference") => Ok(Compute::Cpu),
        _ => Err(ConfigError::Invalid {
            field: "backend",
            reason: format!(
                "must be \"webgpu\", \"cpu\" or \"reference\" (or true / false), got {}",
                js_sys::JSON::stringify(backend)
                    .ok()
                    .and_then(|s| s.as_string())
                    .unwrap_or_else(|| "a value JSON cannot write".into())
                    .chars()
                    .take(40)
                    .collect::<String>()
            ),
        }),
    }
}

/// Held-out sequences each validation pass measures, on either backend.
const VALIDATION_SEQUENCES: usize = 16;

#[wasm_bindgen]
impl WebLab {
    /// Builds the lab on `backend`: "webgpu" (or `true`), "cpu" (gradlab's
    /// f32 CPU backend) or "reference" (or `false`: the f64 CPU reference,
    /// always with the nano preset). A lab asked for on WebGPU where there is
    /// none runs on the f32 CPU backend and says why (`gpuProblem`). Every
    /// run starts from `weights` when given (a Float32Array of the model's
    /// parameters, flat: another lab's `weights(run)`, or a file read by the
    /// full build's `decodeWeights`), else from a fresh init of `seed`.
    pub async fn create(
        config: JsValue,
        #[wasm_bindgen(unchecked_param_type = "boolean | \"webgpu\" | \"cpu\" | \"reference\"")] backend: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Float32Array")] weights: Option<JsValue>,
    ) -> Result<WebLab, JsError> {
        let page = parse_settings(config).map_err(js_err)?;
        let compute = parse_backend(&backend).map_err(js_err)?;
        let corpus = page.corpus().map_err(js_err)?;
        let weights = match weights.filter(|w| !w.is_null() && !w.is_undefined()) {
            Some(w) => Some(state::float32_vector(&w, "weights").map_err(js_err)?),
            None => None,
        };
        let start = |config: &LabConfig| -> Result<Vec<f32>, JsError> {
            let layout = ParamLayout::new(&config.model);
            match &weights {
                // the model as built, not page.preset: the f64 reference builds nano
                Some(w) if w.len() != layout.total => Err(js_err(format!(
                    "weights: {} values, but this lab's model ({} layers, {} channels, context {}) has {} parameters",
                    w.len(),
                    config.model.n_layer,
                    config.model.n_embd,
                    config.model.block_size,
                    layout.total
                ))),
                Some(w) => match w.iter().position(|x| !x.is_finite()) {
                    Some(i) => Err(js_err(format!("weights: value {i} is {}, not a finite number", w[i]))),
                    None => Ok(w.clone()),
                },
                None => Ok(layout.init(config.seed)),
            }
        };
        let mut gpu_problem = None;
        if compute == Compute::Gpu {
            let lab_config = page.resolve(Compute::Gpu).map_err(js_err)?;
            match shared_gpu().await {
                Ok(ctx) => {
                    let init = start(&lab_config)?;
                    // a build that fails on the shared device fails here, not in other labs
                    let lab = ctx
                        .scoped(|| Lab::with_weights::<GpuRun>(&ctx, lab_config, corpus, &init))
                        .await
                        .map_err(js_err)?
                        .map_err(js_err)?;
                    let label = format!("WebGPU: {}", lab.describe());
                    return Ok(WebLab::wrap(lab, label, None, true));
                }
                Err(e) => gpu_problem = Some(e),
            }
        }
        if compute == Compute::Cpu {
            let config = page.resolve(Compute::Cpu).map_err(js_err)?;
            let init = start(&config)?;
            return reference_lab(config, corpus, &init);
        }
        let config = page.resolve(Compute::CpuF32).map_err(js_err)?;
        let init = start(&config)?;
        let lab = Lab::with_weights::<FastCpuRun>(&(), config, corpus, &init).map_err(js_err)?;
        let label = lab.describe();
        Ok(WebLab::wrap(lab, label, gpu_problem, false))
    }

    fn wrap(lab: Lab, label: String, gpu_problem: Option<String>, on_gpu: bool) -> WebLab {
        let (specs, config) = (lab.specs().to_vec(), lab.config.clone());
        let cell = LabCell {
            lab: RefCell::new(lab),
            busy: Cell::new(None),
            steps: Cell::new(0),
            specs,
            config,
            label,
            gpu_problem,
            on_gpu,
        };
        WebLab { cell: Rc::new(cell) }
    }

    /// The adapter (or "CPU") the lab runs on.
    pub fn backend(&self) -> String {
        self.cell.label.clone()
    }

    /// Why the GPU this lab runs on was lost (the browser reset it, it was
    /// destroyed), or undefined. After a loss nothing more runs: build a new
    /// lab (the page's Recover).
    #[wasm_bindgen(js_name = deviceLost)]
    pub fn device_lost(&self) -> Result<Option<String>, JsError> {
        Ok(self.cell.look("deviceLost")?.device_lost())
    }

    /// Stops run `run` for good (it diverged): it sits out every later step
    /// and reports nothing more; the other runs go on. Steps then fail once
    /// every run is stopped.
    pub fn halt(&self, run: u32) -> Result<(), JsError> {
        self.cell.hold("halt")?.lab.halt(run as usize).map_err(js_err)
    }

    /// Which runs `halt` stopped (or a restored state had stopped), in run order.
    pub fn halted(&self) -> Result<Vec<u8>, JsError> {
        Ok(self.cell.look("halted")?.halted().iter().map(|&h| u8::from(h)).collect())
    }

    #[wasm_bindgen(js_name = gpuProblem)]
    pub fn gpu_problem(&self) -> Option<String> {
        self.cell.gpu_problem.clone()
    }

    /// Whether the lab runs on WebGPU (else on one of the CPU backends).
    #[wasm_bindgen(js_name = onGpu)]
    pub fn on_gpu(&self) -> bool {
        self.cell.on_gpu
    }

    /// Threads a CPU lab shares its steps among: more than one only in the
    /// module's threads build (pkg-threads/, a cross-origin isolated page);
    /// 1 for a lab on WebGPU. Not part of `backend()`: a state saved on
    /// threads goes on bit for bit on one, and the other way round.
    pub fn threads(&self) -> usize {
        if self.cell.on_gpu {
            1
        } else {
            crate::cpu::threads::available()
        }
    }

    /// The runs, in the order metrics use: [{strategy, micro_batch}], the
    /// full-batch reference first.
    pub fn runs(&self) -> Result<JsValue, JsError> {
        to_js(&self.cell.specs)
    }

    /// Model and batch actually in use: {preset fields..., batch, seq_len}.
    pub fn config(&self) -> Result<JsValue, JsError> {
        to_js(&self.cell.config)
    }

    /// Takes `n` lockstep steps (a whole number, 1..=1000); resolves to the
    /// metrics that are ready (on the GPU they arrive a few steps late),
    /// oldest first.
    #[wasm_bindgen(unchecked_return_type = "Promise<any[]>")]
    pub fn step(&self, n: f64) -> js_sys::Promise {
        on_lab(&self.cell, "step", move |cell| async move {
            let n = steps_per_call(n).map_err(js_err)?;
            let mut held = cell.hold("step")?;
            for _ in 0..n {
                let stepped = held.lab.step().await;
                cell.steps.set(held.lab.steps());
                stepped.map_err(js_err)?;
            }
            to_js(&held.lab.poll().await.map_err(js_err)?)
        })
    }

    /// Waits for every submitted step; resolves to the metrics not yet taken.
    #[wasm_bindgen(unchecked_return_type = "Promise<any[]>")]
    pub fn flush(&self) -> js_sys::Promise {
        on_lab(&self.cell, "flush", |cell| async move {
            let mut held = cell.hold("flush")?;
            to_js(&held.lab.flush().await.map_err(js_err)?)
        })
    }

    /// Lockstep steps taken (readable at any time).
    pub fn steps(&self) -> f64 {
        self.cell.steps.get() as f64
    }

    /// Validation loss of every run on the held-out text.
    #[wasm_bindgen(js_name = validationLoss, unchecked_return_type = "Promise<Float64Array>")]
    pub fn validation_loss(&self) -> js_sys::Promise {
        on_lab(&self.cell, "validationLoss", |cell| async move {
            let mut held = cell.hold("validationLoss")?;
            let losses = held.lab.validation_loss(VALIDATION_SEQUENCES).await.map_err(js_err)?;
            Ok(js_sys::Float64Array::from(&losses[..]).into())
        })
    }

    /// Text generated by run `run` after `prompt` (at most 400 new tokens).
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn sample(&self, run: u32, prompt: String, new_tokens: u32, temperature: f64, seed: u32) -> js_sys::Promise {
        on_lab(&self.cell, "sample", move |cell| async move {
            let new_tokens = (new_tokens as usize).min(400);
            let mut held = cell.hold("sample")?;
            let text =
                held.lab.generate(run as usize, &prompt, new_tokens, temperature, seed as u64).await.map_err(js_err)?;
            Ok(JsValue::from_str(&text))
        })
    }

    /// The last step's batch and the weight each run gives each of its target
    /// tokens: {sequences, prompt_lengths, runs: [{strategy, micro_batch,
    /// weights[i][j] (token j+1 of sequence i; 0 = not a target)}]}, or
    /// undefined before the first step.
    #[wasm_bindgen(js_name = tokenWeights)]
    pub fn token_weights(&self) -> Result<JsValue, JsError> {
        match self.cell.look("tokenWeights")?.token_weights() {
            Some(w) => to_js(&w),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// ‖W − W_full‖ of each trained tensor for every run (under LoRA each
    /// adapted Linear's merged weight): [{name, distances: [per run]}]. Reads
    /// every run's weights back, so the page asks now and then, not per step.
    #[wasm_bindgen(js_name = tensorDistances, unchecked_return_type = "Promise<any[]>")]
    pub fn tensor_distances(&self) -> js_sys::Promise {
        on_lab(&self.cell, "tensorDistances", |cell| async move {
            let held = cell.hold("tensorDistances")?;
            to_js(&held.lab.tensor_distances().await.map_err(js_err)?)
        })
    }

    /// Run `run`'s weights, flat `ParamLayout` (under LoRA the base with
    /// the adapters merged in): the start of another lab (`create`), or a
    /// file through the full build's `encodeWeights`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn weights(&self, run: u32) -> js_sys::Promise {
        on_lab(&self.cell, "weights", move |cell| async move {
            let held = cell.hold("weights")?;
            let weights = held.lab.weights(run as usize).await.map_err(js_err)?;
            Ok(js_sys::Float32Array::from(&weights[..]).into())
        })
    }

    /// Everything that decides the lab's next steps, as an object of typed
    /// arrays (web/state.rs): every run's weights, optimizer state and step
    /// count, and where the batches stand. Kept in memory by the page, or
    /// written as a file by the full build's `encodeState`. Metrics not yet
    /// taken stay to be taken.
    #[wasm_bindgen(unchecked_return_type = "Promise<object>")]
    pub fn state(&self) -> js_sys::Promise {
        on_lab(&self.cell, "state", |cell| async move {
            let held = cell.hold("state")?;
            let state = held.lab.state().await.map_err(js_err)?;
            state::to_object(&state).map_err(js_err)
        })
    }

    /// Puts back a state (`state()`, or a file read by the full build's
    /// `decodeState`) taken from a lab of the same settings: the lab then
    /// continues bit for bit as that one would have. A state that does not
    /// fit is refused (naming what differs) and changes nothing.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn restore(&self, state: JsValue) -> js_sys::Promise {
        on_lab(&self.cell, "restore", move |cell| async move {
            let state = state::from_object(&state).map_err(js_err)?;
            let mut held = cell.hold("restore")?;
            held.lab.restore(&state).await.map_err(js_err)?;
            cell.steps.set(held.lab.steps());
            Ok(JsValue::UNDEFINED)
        })
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

/// The f64 reference's lab (`WebLab.create`'s "reference"), in the module's
/// full build only: the build every page loads leaves it out, and with it
/// the CPU model in f64 (`rarely-used` in Cargo.toml).
#[cfg(feature = "rarely-used")]
fn reference_lab(config: LabConfig, corpus: Arc<Corpus>, init: &[f32]) -> Result<WebLab, JsError> {
    let lab = Lab::with_weights::<CpuRun>(&(), config, corpus, init).map_err(js_err)?;
    Ok(WebLab::wrap(lab, "CPU (f64 reference, nano preset)".to_string(), None, false))
}

#[cfg(not(feature = "rarely-used"))]
fn reference_lab(_: LabConfig, _: Arc<Corpus>, _: &[f32]) -> Result<WebLab, JsError> {
    Err(js_err(
        "backend: the f64 reference is in the module's full build, pkg-full/gradlab.js (www/wasm.js \
         loadGradlabFull); this build leaves it out",
    ))
}

#[cfg(feature = "rarely-used")]
pub use bench_page::WebBench;

/// The benchmark page's API, in the module's full build only.
#[cfg(feature = "rarely-used")]
mod bench_page {
    use super::*;
    use crate::bench::MatmulCase;

    /// gradlab's matmul kernel on this page's GPU, for the benchmark page
    /// (`www/bench.html`), which times it next to another library.
    #[wasm_bindgen]
    pub struct WebBench {
        ctx: GpuContext,
        cases: Vec<MatmulCase>,
    }

    #[wasm_bindgen]
    impl WebBench {
        /// Opens a WebGPU device (with timestamp queries where the adapter
        /// has them, for `profileStep`); fails with the reason when there is none.
        pub async fn create() -> Result<WebBench, JsError> {
            let ctx = GpuContext::with_timestamps().await.map_err(js_err)?;
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
            let case =
                MatmulCase::new(&self.ctx, m as usize, k as usize, n as usize, inp, weight, bias).map_err(js_err)?;
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

        /// Where one full-batch training step of preset `preset` (`batch`
        /// packed windows, 1..=64, of `seq_len` tokens, 1 up to the preset's
        /// context, from the shipped corpus `kjv`, which must have been
        /// provided) spends its GPU time: {dispatches, kernels: [{kernel,
        /// count, seconds}]}, slowest first, each dispatch the median of
        /// `rounds` (1..=20) profiled steps. Fails in words where the adapter
        /// has no timestamp queries.
        #[wasm_bindgen(js_name = profileStep)]
        pub async fn profile_step(
            &self,
            preset: String,
            batch: u32,
            seq_len: u32,
            rounds: u32,
        ) -> Result<JsValue, JsError> {
            let model = ModelConfig::preset(&preset).map_err(js_err)?;
            if !(1..=64).contains(&batch) {
                return Err(JsError::new(&format!("batch: must be 1..=64, got {batch}")));
            }
            if !(1..=model.block_size).contains(&(seq_len as usize)) {
                let most = model.block_size;
                return Err(JsError::new(&format!("seq_len: must be 1..={most} for {preset}, got {seq_len}")));
            }
            let corpus = LabSettings::default().corpus().map_err(js_err)?;
            let shape = [batch as usize, seq_len as usize];
            let profile =
                crate::bench::profile_step(&self.ctx, &corpus, model, shape, rounds as usize).await.map_err(js_err)?;
            to_js(&profile)
        }

        /// The last result of case `index`, [m,n] row-major.
        pub async fn output(&self, index: u32) -> Result<Vec<f32>, JsError> {
            self.case(index)?.output(&self.ctx).await.map_err(js_err)
        }

        /// The same multiply on gradlab's f32 CPU backend (SIMD, this thread),
        /// `times` (1..=1000) times over; returns the output [m,n]. Needs no GPU.
        #[wasm_bindgen(js_name = cpuMatmul)]
        pub fn cpu_matmul(
            m: u32,
            k: u32,
            n: u32,
            inp: &[f32],
            weight: &[f32],
            bias: &[f32],
            times: u32,
        ) -> Result<Vec<f32>, JsError> {
            if !(1..=1000).contains(&times) {
                return Err(JsError::new(&format!("times: must be 1..=1000, got {times}")));
            }
            crate::bench::cpu_matmul(m as usize, k as usize, n as usize, inp, weight, bias, times as usize)
                .map_err(js_err)
        }
    }
}
