//! Browser tests: the kernels and a whole model step on the browser's WebGPU
//! (SwiftShader in headless Chromium on CI), against the CPU reference.
//! Run by scripts/test.sh through wasm-bindgen-test-runner and wasm-pack.
#![cfg(target_arch = "wasm32")]

use gradlab::checks::{self, Comparison, LogitRows, UpdateKind};
use gradlab::gpu::GpuContext;
use gradlab::model::ModelConfig;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const KERNEL_TOL: f64 = 1e-4;
const MODEL_TOL: f64 = 1e-3;

fn seed() -> u64 {
    let seed = js_sys::Date::now() as u64;
    web_sys::console::log_1(&format!("seed {seed}").into());
    seed
}

fn assert_all_below(results: &[Comparison], tol: f64) {
    for r in results {
        web_sys::console::log_1(&r.to_string().into());
    }
    let bad: Vec<String> = results.iter().filter(|r| r.rel_error >= tol).map(|r| r.to_string()).collect();
    assert!(bad.is_empty(), "relative error above {tol:e}:\n{}", bad.join("\n"));
}

#[wasm_bindgen_test]
async fn adapter_is_real_webgpu() {
    let ctx = GpuContext::new().await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    web_sys::console::log_1(&format!("adapter: {}", ctx.adapter).into());
    assert_eq!(ctx.adapter.backend, "BrowserWebGpu", "expected the browser's WebGPU, got {}", ctx.adapter);
}

#[wasm_bindgen_test]
async fn matmul_matches_cpu() {
    let ctx = GpuContext::new().await.unwrap();
    let s = seed();
    assert_all_below(&checks::matmul(&ctx, s, 67, 13, 29).await.unwrap(), KERNEL_TOL);
    assert_all_below(&checks::matmul(&ctx, s + 1, 130, 65, 70).await.unwrap(), KERNEL_TOL);
}

#[wasm_bindgen_test]
async fn crossentropy_matches_cpu() {
    let ctx = GpuContext::new().await.unwrap();
    let s = seed();
    for rows in [LogitRows::Random, LogitRows::Confident, LogitRows::Tied] {
        assert_all_below(&checks::crossentropy(&ctx, s, 77, 257, rows).await.unwrap(), KERNEL_TOL);
    }
}

#[wasm_bindgen_test]
async fn sampling_matches_cpu() {
    let ctx = GpuContext::new().await.unwrap();
    let s = seed();
    for (i, temperature) in [0.0, 0.9].into_iter().enumerate() {
        // token ids either agree or not
        assert_all_below(&checks::sampling(&ctx, s + i as u64, 64, 256, 100, 40, temperature).await.unwrap(), 1e-300);
    }
}

#[wasm_bindgen_test]
async fn adam_matches_cpu() {
    let ctx = GpuContext::new().await.unwrap();
    assert_all_below(&checks::optimizer(&ctx, seed(), UpdateKind::AdamW, 10_007).await.unwrap(), KERNEL_TOL);
}

#[wasm_bindgen_test]
async fn whole_model_step_matches_cpu() {
    let ctx = GpuContext::new().await.unwrap();
    let config = ModelConfig { vocab_size: 67, block_size: 19, n_layer: 2, n_head: 3, n_embd: 21 };
    let case = checks::model_case(seed(), config, 3, 17);
    assert_all_below(&checks::model_gradients(&ctx, &case).await.unwrap(), MODEL_TOL);
}
