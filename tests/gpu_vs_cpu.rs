//! Every kernel on the GPU (natively: whatever adapter wgpu finds, lavapipe on
//! CI) against its CPU twin, plus the whole model's loss and gradients: the
//! full `checks::suite()`, one test per kernel family, each with the
//! tolerance the suite gives it. Fresh inputs every run; the seed is printed
//! (GRADLAB_SEED replays it).
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use gradlab::checks::{self, Seed};
use gradlab::gpu::GpuContext;

fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = GpuContext::new_blocking().expect("a GPU adapter (install mesa-vulkan-drivers for lavapipe)");
        eprintln!("adapter: {}", ctx.adapter);
        ctx
    })
}

/// Runs every check of `family` in the full suite and fails naming each
/// comparison above its tolerance.
fn family_matches_cpu(family: &str) {
    let seed = Seed::fresh();
    let failed = pollster::block_on(checks::run_family(ctx(), &checks::suite(), family, seed.0)).unwrap();
    assert!(failed.is_empty(), "{family}: above tolerance:\n{}", failed.join("\n"));
}

#[test]
fn matmul_matches_cpu_at_ragged_sizes() {
    family_matches_cpu("matmul");
}

#[test]
fn crossentropy_matches_cpu() {
    family_matches_cpu("crossentropy");
}

#[test]
fn sampling_matches_cpu() {
    family_matches_cpu("sampling");
}

#[test]
fn optimizers_match_cpu() {
    family_matches_cpu("optimizer");
}

#[test]
fn encoder_matches_cpu() {
    family_matches_cpu("encoder");
}

#[test]
fn layernorm_matches_cpu() {
    family_matches_cpu("layernorm");
}

#[test]
fn attention_matches_cpu() {
    family_matches_cpu("attention");
}

#[test]
fn elementwise_kernels_match_cpu() {
    family_matches_cpu("elementwise");
}

#[test]
fn reductions_match_cpu() {
    family_matches_cpu("reductions");
}

#[test]
fn whole_model_loss_and_every_gradient_match_cpu() {
    family_matches_cpu("model");
}

#[test]
fn lora_kernels_match_cpu() {
    family_matches_cpu("lora");
}

#[test]
fn lora_step_and_adapter_gradients_match_cpu() {
    family_matches_cpu("lora_model");
}

#[test]
fn every_check_belongs_to_a_tested_family_and_the_quick_suite_covers_each() {
    let families = [
        "matmul",
        "crossentropy",
        "sampling",
        "optimizer",
        "encoder",
        "layernorm",
        "attention",
        "elementwise",
        "reductions",
        "model",
        "lora",
        "lora_model",
    ];
    for check in checks::suite() {
        assert!(families.contains(&check.family()), "{:?} has no test above", check.case);
    }
    for family in families {
        assert!(checks::quick_suite().iter().any(|c| c.family() == family), "the quick suite skips {family}");
    }
}

#[test]
fn the_benchmark_matmul_matches_cpu_and_refuses_bad_shapes() {
    use gradlab::bench::MatmulCase;
    let seed = Seed::fresh();
    let mut rng = gradlab::rng::Rng::new(seed.0);
    let (m, k, n) = (37, 13, 29);
    let (x, w, b) = (rng.vec_f32(m * k, 1.0), rng.vec_f32(n * k, 1.0), rng.vec_f32(n, 1.0));
    let case = MatmulCase::new(ctx(), m, k, n, &x, &w, &b).unwrap();
    assert_eq!(case.flops(), 2.0 * (m * k * n) as f64);
    pollster::block_on(case.run(ctx(), 3)).unwrap();
    let got = pollster::block_on(case.output(ctx())).unwrap();
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let mut want = vec![0.0; m * n];
    gradlab::cpu::matmul_forward(&mut want, &f(&x), &f(&w), Some(&f(&b)), m, k, n);
    let c = checks::compare("bench matmul", &got, &want);
    assert!(c.rel_error < checks::KERNEL_TOLERANCE, "{c}");
    let err = |m, k, n, x: &[f32]| MatmulCase::new(ctx(), m, k, n, x, &w, &b).err().unwrap().to_string();
    assert_eq!(err(0, k, n, &x), "m: must be 1..=4096, got 0");
    assert_eq!(err(m, k, n, &x[1..]), format!("inp: expected {} floats, got {}", m * k, m * k - 1));
    assert_eq!(err(m, k, 9999, &x), "n: must be 1..=4096, got 9999");
}
