//! `WebLab`, a running accumulation lab as JavaScript sees it: a thin shell
//! over `lab::Lab` on WebGPU (the page's shared device, `device`), on the f32
//! CPU backend or, in the module's full build, on the f64 reference. Every
//! call after `create` goes through one gate (`LabCell::hold`), so a second
//! call while one is in flight is refused in words instead of borrowing twice.
//!
//! Not here: the settings' rules (`lab::settings`), the state's JavaScript
//! shape (`state`), its file format (`files`).

use std::cell::{Cell, RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;

use wasm_bindgen::prelude::*;

use super::device::shared_gpu;
use super::{js_err, parse_backend, parse_settings, settings_err, state, to_js};
use crate::cpu::FastCpuRun;
#[cfg(feature = "rarely-used")]
use crate::cpu::ReferenceRun;
use crate::data::Corpus;
use crate::gpu::GpuRun;
use crate::lab::settings::{run_index, steps_per_call, whole_in, Backend, MAX_SAMPLE_TOKENS};
use crate::lab::{Lab, LabConfig, RunSpec};
use crate::model::ParamLayout;

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
    /// Async calls made and not yet settled, oldest first. A call's promise
    /// starts running only after the call returns, so a synchronous call
    /// made meanwhile (`step(1); tokenWeights()`) would find the lab free and
    /// answer for the step before: it is refused naming the first of these.
    pending: RefCell<Vec<&'static str>>,
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

    /// For a synchronous call: the error naming the async call made before
    /// it and not yet settled, if there is one.
    fn check_pending(&self, call: &str) -> Result<(), JsError> {
        match self.pending.try_borrow().ok().and_then(|p| p.first().copied()) {
            Some(holder) => Err(JsError::new(&format!(
                "lab: {call}() was called while {holder}() is still running; await each call before making the next"
            ))),
            None => Ok(()),
        }
    }

    /// The lab for synchronous call `call`, if no call holds it or is on its way to.
    fn hold_now(&self, call: &'static str) -> Result<Held<'_>, JsError> {
        self.check_pending(call)?;
        self.hold(call)
    }

    /// The lab for call `call`, or the error saying which call holds it.
    fn hold(&self, call: &'static str) -> Result<Held<'_>, JsError> {
        let lab = self.lab.try_borrow_mut().map_err(|_| self.busy_error(call))?;
        self.busy.set(Some(call));
        Ok(Held { lab, busy: &self.busy })
    }

    /// The lab for a synchronous look, if no call holds it or is on its way to.
    fn look(&self, call: &'static str) -> Result<std::cell::Ref<'_, Lab>, JsError> {
        self.check_pending(call)?;
        self.lab.try_borrow().map_err(|_| self.busy_error(call))
    }
}

/// An async call's place in `LabCell::pending`, given up when it settles.
struct Pending {
    cell: Rc<LabCell>,
    call: &'static str,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.cell.pending.try_borrow_mut() {
            if let Some(i) = pending.iter().position(|c| *c == self.call) {
                pending.remove(i);
            }
        }
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
    if let Ok(mut pending) = cell.pending.try_borrow_mut() {
        pending.push(name);
    }
    let pending = Pending { cell: cell.clone(), call: name };
    wasm_bindgen_futures::future_to_promise(async move {
        let _pending = pending;
        // refused at once, before anything runs
        drop(cell.hold(name)?);
        call(cell).await.map_err(JsValue::from)
    })
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
        let page = parse_settings(config).map_err(settings_err)?;
        let backend_kind = parse_backend(&backend).map_err(js_err)?;
        let corpus = page.corpus().map_err(settings_err)?;
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
        if backend_kind == Backend::Gpu {
            match shared_gpu().await {
                Ok(ctx) => {
                    // every buffer checked against this adapter's limits before any is made
                    let lab_config = page.resolve_on(Backend::Gpu, &ctx.limits).map_err(settings_err)?;
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
        if backend_kind == Backend::Reference {
            let config = page.resolve(Backend::Reference).map_err(settings_err)?;
            let init = start(&config)?;
            return reference_lab(config, corpus, &init);
        }
        let config = page.resolve(Backend::Cpu).map_err(settings_err)?;
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
            pending: RefCell::new(Vec::new()),
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
    /// every run is stopped. `run` is a whole number from 0 to runs − 1;
    /// anything else (-1, NaN, 1.5) is refused naming it.
    pub fn halt(&self, run: f64) -> Result<(), JsError> {
        let run = run_index(run, self.cell.specs.len()).map_err(js_err)?;
        self.cell.hold_now("halt")?.lab.halt(run).map_err(js_err)
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

    /// The lab's settings as resolved for its backend (`LabConfig`, the
    /// model as built: the f64 reference's is nano whatever was asked):
    /// {model: {vocab_size, block_size, n_layer, n_head, n_embd}, batch (B,
    /// sequences per optimizer step), seq_len (T), spread, packing,
    /// mask_prompt, ranks (R), optimizer: {kind, lr, momentum, beta1, beta2,
    /// eps, weight_decay, max_grad_norm, schedule}, lora ({rank, alpha,
    /// targets, seed}, or null), seed, runs: [{strategy, micro_batch}] (the
    /// runs beside the full-batch reference, which `runs()` lists first)}.
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

    /// Text generated by run `run` (a whole number from 0 to runs − 1) after
    /// `prompt`: `new_tokens` (a whole number from 0 to 400) at
    /// `temperature`, the draws seeded by `seed` (a whole number from 0 to
    /// 2^32 − 1).
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn sample(&self, run: f64, prompt: String, new_tokens: f64, temperature: f64, seed: f64) -> js_sys::Promise {
        on_lab(&self.cell, "sample", move |cell| async move {
            let run = run_index(run, cell.specs.len()).map_err(js_err)?;
            let new_tokens = whole_in("new_tokens", new_tokens, MAX_SAMPLE_TOKENS).map_err(js_err)?;
            let seed = whole_in("seed", seed, u32::MAX as u64).map_err(js_err)?;
            let mut held = cell.hold("sample")?;
            let text = held.lab.generate(run, &prompt, new_tokens as usize, temperature, seed).await.map_err(js_err)?;
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

    /// Run `run`'s weights (`run` a whole number from 0 to runs − 1), flat
    /// `ParamLayout` (under LoRA the base with the adapters merged in): the
    /// start of another lab (`create`), or a file through the full build's
    /// `encodeWeights`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn weights(&self, run: f64) -> js_sys::Promise {
        on_lab(&self.cell, "weights", move |cell| async move {
            let run = run_index(run, cell.specs.len()).map_err(js_err)?;
            let held = cell.hold("weights")?;
            let weights = held.lab.weights(run).await.map_err(js_err)?;
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

/// The f64 reference's lab (`WebLab.create`'s "reference"), in the module's
/// full build only: the build every page loads leaves it out, and with it
/// the CPU model in f64 (`rarely-used` in Cargo.toml).
#[cfg(feature = "rarely-used")]
fn reference_lab(config: LabConfig, corpus: Arc<Corpus>, init: &[f32]) -> Result<WebLab, JsError> {
    let lab = Lab::with_weights::<ReferenceRun>(&(), config, corpus, init).map_err(js_err)?;
    Ok(WebLab::wrap(lab, "CPU (f64 reference, nano preset)".to_string(), None, false))
}

#[cfg(not(feature = "rarely-used"))]
fn reference_lab(_: LabConfig, _: Arc<Corpus>, _: &[f32]) -> Result<WebLab, JsError> {
    Err(js_err(
        "backend: the f64 reference is in the module's full build, pkg-full/gradlab.js (www/wasm.js \
         loadGradlabFull); this build leaves it out",
    ))
}
