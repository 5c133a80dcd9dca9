//! Browser tests: the quick check suite (`checks::quick_suite`, the same
//! comparisons and tolerances `gradlab check` uses) on the browser's WebGPU
//! (SwiftShader in headless Chromium on CI) against the CPU reference.
//! Run by scripts/test.sh through wasm-bindgen-test-runner and wasm-pack.
#![cfg(target_arch = "wasm32")]

use gradlab::checks::{self, Seed};
use gradlab::gpu::GpuContext;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn family_matches_cpu(family: &str) {
    let ctx = GpuContext::new().await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    let seed = Seed::fresh();
    let failed = checks::run_family(&ctx, &checks::quick_suite(), family, seed.0).await.unwrap();
    assert!(failed.is_empty(), "{family}: above tolerance:\n{}", failed.join("\n"));
}

#[wasm_bindgen_test]
async fn adapter_is_real_webgpu() {
    let ctx = GpuContext::new().await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    checks::log(&format!("adapter: {}", ctx.adapter));
    assert_eq!(ctx.adapter.backend, "BrowserWebGpu", "expected the browser's WebGPU, got {}", ctx.adapter);
}

#[wasm_bindgen_test]
async fn matmul_matches_cpu() {
    family_matches_cpu("matmul").await;
}

#[wasm_bindgen_test]
async fn crossentropy_matches_cpu() {
    family_matches_cpu("crossentropy").await;
}

#[wasm_bindgen_test]
async fn sampling_matches_cpu() {
    family_matches_cpu("sampling").await;
}

#[wasm_bindgen_test]
async fn optimizers_match_cpu() {
    family_matches_cpu("optimizer").await;
}

#[wasm_bindgen_test]
async fn encoder_layernorm_attention_and_elementwise_match_cpu() {
    for family in ["encoder", "layernorm", "attention", "elementwise", "reductions"] {
        family_matches_cpu(family).await;
    }
}

#[wasm_bindgen_test]
async fn whole_model_step_matches_cpu() {
    family_matches_cpu("model").await;
}

#[wasm_bindgen_test]
async fn lora_kernels_and_step_match_cpu() {
    family_matches_cpu("lora").await;
    family_matches_cpu("lora_model").await;
}
