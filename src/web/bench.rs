//! The benchmark page's JavaScript API (`www/bench.html`), in the module's
//! full build only (`rarely-used`): gradlab's matmul on the page's GPU, timed
//! next to another library, a training step's GPU time per kernel, and the
//! same multiply on the f32 CPU backend. A thin shell over `bench`.
//!
//! Not here: the labs' shared device (`device`): the benchmark opens its own,
//! with timestamp queries where the adapter has them.

use wasm_bindgen::prelude::*;

use super::{js_err, to_js};
use crate::bench::MatmulCase;
use crate::gpu::GpuContext;
use crate::lab::settings::LabSettings;
use crate::model::ModelConfig;

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
        crate::bench::cpu_matmul(m as usize, k as usize, n as usize, inp, weight, bias, times as usize).map_err(js_err)
    }
}
