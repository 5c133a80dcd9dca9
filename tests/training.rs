//! Training on the GPU end to end: the nano model learns the demo text, and a
//! run is bit-for-bit reproducible from its seed.
#![cfg(not(target_arch = "wasm32"))]

use gradlab::gpu::GpuContext;
use gradlab::model::{ModelConfig, ParamLayout};
use gradlab::optim::OptimizerConfig;
use gradlab::rng::Rng;
use gradlab::train::{Run, RunConfig, StepStats};

fn train(ctx: &GpuContext, seed: u64, steps: u64) -> (Vec<StepStats>, Vec<f32>) {
    let model = ModelConfig::nano();
    let config = RunConfig { model, micro_batch: 8, grad_accum: 1, seq_len: 64, optimizer: OptimizerConfig::default() };
    let layout = ParamLayout::new(&model);
    let mut run = Run::new(ctx, config, &layout.init(seed)).unwrap();
    let tokens = gradlab::data::encode(gradlab::data::DEMO_TEXT);
    let mut rng = Rng::new(seed);
    let mut stats = Vec::new();
    for _ in 0..steps {
        let batch = gradlab::data::random_windows(&tokens, 8, 64, &mut rng).unwrap();
        let scale = 1.0 / batch.tokens() as f32;
        pollster::block_on(run.step(ctx, &[batch], &[scale])).unwrap();
        stats.extend(pollster::block_on(run.poll(ctx)).unwrap());
    }
    stats.extend(pollster::block_on(run.flush(ctx)).unwrap());
    let params = pollster::block_on(run.params(ctx)).unwrap();
    (stats, params)
}

#[test]
fn nano_learns_the_demo_text_and_runs_are_bit_identical() {
    let ctx = GpuContext::new_blocking().unwrap();
    eprintln!("adapter: {}", ctx.adapter);
    let (stats, _) = train(&ctx, 7, 200);
    assert_eq!(
        stats.iter().map(|s| s.step).collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>(),
        "every step reported once, in order"
    );
    let ln_v = (256f64).ln();
    let first = stats[0].mean_loss();
    let last10 = stats[190..].iter().map(|s| s.mean_loss()).sum::<f64>() / 10.0;
    eprintln!("loss: first {first:.4}, mean of last 10 {last10:.4}, ln V {ln_v:.4}");
    assert!((first - ln_v).abs() < 0.1, "a fresh model should be near uniform: {first}");
    // 2.5 nats is far below ln 256 = 5.55: the model has learned letter and word statistics
    assert!(last10 < 2.5, "nano should reach a loss below 2.5 nats after 200 steps, got {last10}");

    let (a_stats, a_params) = train(&ctx, 11, 25);
    let (b_stats, b_params) = train(&ctx, 11, 25);
    let bits =
        |s: &[StepStats]| s.iter().map(|x| (x.loss_sums[0].to_bits(), x.grad_norm.to_bits())).collect::<Vec<_>>();
    assert_eq!(bits(&a_stats), bits(&b_stats), "same seed, same losses, bit for bit");
    assert!(a_params.iter().zip(&b_params).all(|(x, y)| x.to_bits() == y.to_bits()), "same seed, same weights");
    let (c_stats, _) = train(&ctx, 12, 25);
    assert_ne!(bits(&a_stats), bits(&c_stats), "a different seed gives a different run");
}
