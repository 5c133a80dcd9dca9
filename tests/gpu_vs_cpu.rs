//! Every kernel on the GPU (natively: whatever adapter wgpu finds, lavapipe on
//! CI) against its CPU twin, on fresh random inputs at sizes that are not
//! multiples of the tiles (64 for matmul, 256 for reductions), plus the whole
//! model's loss and gradients.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use gradlab::checks::{self, Comparison, LogitRows, UpdateKind};
use gradlab::gpu::GpuContext;
use gradlab::model::ModelConfig;

/// f32 kernels against f64 references.
const KERNEL_TOL: f64 = 1e-4;
/// Whole-model gradients (many f32 kernels in a row).
const MODEL_TOL: f64 = 1e-3;

fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = GpuContext::new_blocking().expect("a GPU adapter (install mesa-vulkan-drivers for lavapipe)");
        eprintln!("adapter: {}", ctx.adapter);
        ctx
    })
}

/// Fresh inputs each run; the seed is printed so a failure can be replayed.
fn seed() -> u64 {
    let seed = std::env::var("GRADLAB_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    eprintln!("seed {seed} (set GRADLAB_SEED to replay)");
    seed
}

fn assert_all_below(results: &[Comparison], tol: f64) {
    for r in results {
        eprintln!("{r}");
    }
    let bad: Vec<String> = results.iter().filter(|r| r.rel_error >= tol).map(|r| r.to_string()).collect();
    assert!(bad.is_empty(), "relative error above {tol:e}:\n{}", bad.join("\n"));
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

#[test]
fn matmul_matches_cpu_at_ragged_sizes() {
    let s = seed();
    for (i, (n, c, oc)) in [(1, 1, 1), (67, 13, 29), (130, 65, 191), (64, 64, 64), (37, 200, 3)].into_iter().enumerate()
    {
        assert_all_below(&block(checks::matmul(ctx(), s + i as u64, n, c, oc)).unwrap(), KERNEL_TOL);
    }
}

#[test]
fn crossentropy_matches_cpu() {
    let s = seed();
    for (i, (n, v)) in [(1, 2), (77, 257), (300, 65), (5, 1000)].into_iter().enumerate() {
        for rows in [LogitRows::Random, LogitRows::Confident, LogitRows::Tied] {
            assert_all_below(&block(checks::crossentropy(ctx(), s + i as u64, n, v, rows)).unwrap(), KERNEL_TOL);
        }
    }
}

#[test]
fn sampling_matches_cpu() {
    let s = seed();
    // (t, v, picks, tokens in the window at the start, temperature)
    for (i, (t, v, k, start, temperature)) in
        [(7, 13, 20, 3, 0.0), (7, 13, 20, 1, 0.7), (64, 256, 100, 40, 1.0), (1, 5, 9, 1, 2.0), (5, 300, 4, 5, 0.0)]
            .into_iter()
            .enumerate()
    {
        let results = block(checks::sampling(ctx(), s + i as u64, t, v, k, start, temperature)).unwrap();
        // token ids either agree or not
        assert_all_below(&results, f64::MIN_POSITIVE);
    }
}

#[test]
fn optimizers_match_cpu() {
    let s = seed();
    for n in [1, 1000, 70_001] {
        assert_all_below(&block(checks::optimizer(ctx(), s, UpdateKind::AdamW, n)).unwrap(), KERNEL_TOL);
        assert_all_below(&block(checks::optimizer(ctx(), s + 1, UpdateKind::Sgd, n)).unwrap(), KERNEL_TOL);
    }
}

#[test]
fn encoder_matches_cpu() {
    let s = seed();
    assert_all_below(&block(checks::encoder(ctx(), s, 3, 17, 19, 11)).unwrap(), KERNEL_TOL);
    assert_all_below(&block(checks::encoder(ctx(), s + 1, 1, 1, 1, 1)).unwrap(), KERNEL_TOL);
}

#[test]
fn layernorm_matches_cpu() {
    let s = seed();
    assert_all_below(&block(checks::layernorm(ctx(), s, 131, 67)).unwrap(), KERNEL_TOL);
    assert_all_below(&block(checks::layernorm(ctx(), s + 1, 1, 3)).unwrap(), KERNEL_TOL);
}

#[test]
fn attention_matches_cpu() {
    let s = seed();
    assert_all_below(&block(checks::attention(ctx(), s, 3, 23, 12, 3)).unwrap(), KERNEL_TOL);
    assert_all_below(&block(checks::attention(ctx(), s + 1, 1, 1, 4, 1)).unwrap(), KERNEL_TOL);
}

#[test]
fn elementwise_kernels_match_cpu() {
    let s = seed();
    assert_all_below(&block(checks::elementwise(ctx(), s, 1001)).unwrap(), KERNEL_TOL);
}

#[test]
fn reductions_match_cpu() {
    let s = seed();
    for n in [1, 255, 4097, 100_003] {
        assert_all_below(&block(checks::reductions(ctx(), s, n)).unwrap(), KERNEL_TOL);
    }
}

#[test]
fn whole_model_loss_and_every_gradient_match_cpu() {
    let s = seed();
    let config = ModelConfig { vocab_size: 67, block_size: 19, n_layer: 2, n_head: 3, n_embd: 21 };
    let case = checks::model_case(s, config, 3, 17);
    assert_all_below(&block(checks::model_gradients(ctx(), &case)).unwrap(), MODEL_TOL);
    let case = checks::model_case(s + 1, ModelConfig::nano(), 2, 64);
    assert_all_below(&block(checks::model_gradients(ctx(), &case)).unwrap(), MODEL_TOL);
}

#[test]
fn the_benchmark_matmul_matches_cpu_and_refuses_bad_shapes() {
    use gradlab::bench::MatmulCase;
    let mut rng = gradlab::rng::Rng::new(seed());
    let (m, k, n) = (37, 13, 29);
    let (x, w, b) = (rng.vec_f32(m * k, 1.0), rng.vec_f32(n * k, 1.0), rng.vec_f32(n, 1.0));
    let case = MatmulCase::new(ctx(), m, k, n, &x, &w, &b).unwrap();
    assert_eq!(case.flops(), 2.0 * (m * k * n) as f64);
    block(case.run(ctx(), 3)).unwrap();
    let got = block(case.output(ctx())).unwrap();
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let mut want = vec![0.0; m * n];
    gradlab::cpu::matmul_forward(&mut want, &f(&x), &f(&w), Some(&f(&b)), m, k, n);
    assert_all_below(&[checks::compare("bench matmul", &got, &want)], KERNEL_TOL);
    let err = |m, k, n, x: &[f32]| MatmulCase::new(ctx(), m, k, n, x, &w, &b).err().unwrap().to_string();
    assert_eq!(err(0, k, n, &x), "m: must be 1..=4096, got 0");
    assert_eq!(err(m, k, n, &x[1..]), format!("inp: expected {} floats, got {}", m * k, m * k - 1));
    assert_eq!(err(m, k, 9999, &x), "n: must be 1..=4096, got 9999");
}
