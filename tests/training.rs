//! Training on the GPU end to end: the nano model learns the demo text, and a
//! run is bit-for-bit reproducible from its seed.
#![cfg(not(target_arch = "wasm32"))]

use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::model::{ModelConfig, ParamLayout};
use gradlab::optim::OptimizerConfig;
use gradlab::rng::Rng;
use gradlab::train::{MicroBatch, RunConfig, StepStats, StepWork, Trainer};
use pollster::block_on;

fn train(ctx: &GpuContext, seed: u64, steps: u64) -> (Vec<StepStats>, Vec<f32>) {
    let model = ModelConfig::nano();
    let config = RunConfig {
        model,
        micro_batch: 8,
        grad_accum: 1,
        seq_len: 64,
        optimizer: OptimizerConfig::default(),
        lora: None,
    };
    let layout = ParamLayout::new(&model);
    let mut run = GpuRun::new(ctx, config, &layout.init(seed)).unwrap();
    let tokens = gradlab::data::encode(gradlab::data::DEMO_TEXT);
    let mut rng = Rng::new(seed);
    let mut stats = Vec::new();
    for _ in 0..steps {
        let batch = gradlab::data::random_windows(&tokens, 8, 64, &mut rng).unwrap();
        let scale = 1.0 / batch.tokens() as f32;
        block_on(run.step(StepWork { micro_batches: &[batch], scales: &[scale] })).unwrap();
        stats.extend(block_on(run.poll(false)).unwrap());
    }
    stats.extend(block_on(run.poll(true)).unwrap());
    let params = block_on(run.params()).unwrap();
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

#[test]
fn bad_configs_and_batches_are_refused_with_the_field_named() {
    let ctx = GpuContext::new_blocking().unwrap();
    let base = RunConfig {
        model: ModelConfig::nano(),
        micro_batch: 2,
        grad_accum: 1,
        seq_len: 64,
        optimizer: OptimizerConfig::default(),
        lora: None,
    };
    let init = ParamLayout::new(&base.model).init(1);
    let err = |config: RunConfig, params: &[f32]| match GpuRun::new(&ctx, config, params) {
        Ok(_) => panic!("accepted {config:?}"),
        Err(e) => e.to_string(),
    };
    let mut c = base;
    c.model.n_head = 3;
    assert!(err(c, &init).contains("divisible by n_head"));
    let mut c = base;
    c.micro_batch = 0;
    assert!(err(c, &init).contains("micro_batch"));
    let mut c = base;
    c.seq_len = 65;
    assert!(err(c, &init).contains("seq_len"));
    let mut c = base;
    c.optimizer.lr = f64::NAN;
    assert!(err(c, &init).contains("learning_rate"));
    // a model whose logits alone exceed any adapter's binding limit
    let mut c = base;
    c.model = ModelConfig { vocab_size: 1 << 20, block_size: 4096, n_layer: 1, n_head: 1, n_embd: 64 };
    c.seq_len = 4096;
    c.micro_batch = 64;
    let big = vec![0.0; ParamLayout::new(&c.model).total];
    let e = err(c, &big);
    assert!(e.contains("maxStorageBufferBindingSize") || e.contains("maxBufferSize"), "{e}");
    assert!(err(base, &init[1..]).contains("params"));

    let mut run = GpuRun::new(&ctx, base, &init).unwrap();
    let tokens = gradlab::data::encode(gradlab::data::DEMO_TEXT);
    let mut rng = Rng::new(1);
    let good = gradlab::data::random_windows(&tokens, 2, 64, &mut rng).unwrap();
    let mut bad = good.clone();
    bad.targets[3] = 300;
    let step_err = |batch: MicroBatch, scale: f32, run: &mut GpuRun| {
        block_on(run.step(StepWork { micro_batches: &[batch], scales: &[scale] })).unwrap_err().to_string()
    };
    assert!(step_err(bad, 0.1, &mut run).contains("outside the vocabulary"));
    assert!(step_err(good.clone(), f32::NAN, &mut run).contains("dlogits_scale"));
    let mut short = good.clone();
    short.inputs.pop();
    assert!(step_err(short, 0.1, &mut run).contains("micro-batch 0"));
    // refused steps leave the run usable
    block_on(run.step(StepWork { micro_batches: &[good], scales: &[0.01] })).unwrap();
    assert_eq!(block_on(run.poll(true)).unwrap().len(), 1);
}

/// Text generated on the GPU (forward and pick alternating in one submission,
/// window sliding past the context, across submissions) is what the f64 CPU
/// model generates when fed the same context and the same random draws.
#[test]
fn generated_text_follows_the_cpu_model() {
    let ctx = GpuContext::new_blocking().unwrap();
    let (_, params) = train(&ctx, 5, 40);
    let model = ModelConfig::nano();
    let config = RunConfig {
        model,
        micro_batch: 3,
        grad_accum: 2,
        seq_len: 64,
        optimizer: OptimizerConfig::default(),
        lora: None,
    };
    let mut run = GpuRun::new(&ctx, config, &params).unwrap();
    let mut cpu = gradlab::cpu::CpuModel::new(ParamLayout::new(&model), &params);
    let prompt = gradlab::data::encode("And the LORD said unto ");
    let new_tokens = gradlab::train::SAMPLE_CHUNK + 40;
    let v = model.vocab_size;
    for temperature in [0.0, 0.8] {
        let inv_temperature = gradlab::train::inverse_temperature(temperature).unwrap();
        let draws = gradlab::train::sample_draws(inv_temperature, new_tokens, &mut Rng::new(9));
        let out = block_on(run.generate(&prompt, &draws)).unwrap();
        assert_eq!(out.len(), new_tokens);
        let mut draws = Rng::new(9);
        let mut context = prompt.clone();
        let mut disagreements = Vec::new();
        for (i, &token) in out.iter().enumerate() {
            let window = &context[context.len().saturating_sub(64)..];
            let n = window.len();
            cpu.forward(window, &vec![gradlab::IGNORE_INDEX; n], 1, n);
            let logits = &cpu.logits()[(n - 1) * v..n * v];
            let u = draws.uniform() as f32 as f64;
            let inv_temperature = gradlab::train::inverse_temperature(temperature).unwrap();
            let expected = gradlab::cpu::pick_token(logits, inv_temperature, u);
            if expected != token as usize {
                // f32 against f64 may land a draw on the other side of a boundary: a near
                // tie when greedy, u within rounding of the cumulative probability otherwise
                let top = logits.iter().cloned().fold(f64::MIN, f64::max);
                let margin = if temperature == 0.0 {
                    (logits[expected] - logits[token as usize]).abs() / top.abs().max(1.0)
                } else {
                    let weights: Vec<f64> = logits.iter().map(|x| ((x - top) / temperature).exp()).collect();
                    let below: f64 = weights[..=expected.min(token as usize)].iter().sum();
                    (below / weights.iter().sum::<f64>() - u).abs()
                };
                eprintln!("token {i}: GPU picked {token}, CPU {expected} (margin {margin:e})");
                assert!(margin < 1e-4, "token {i}: GPU picked {token}, CPU {expected} (margin {margin:e})");
                disagreements.push(i);
            }
            context.push(token);
        }
        eprintln!("T={temperature}: {:?}", gradlab::data::decode(&out));
        assert!(disagreements.len() <= 1, "GPU and CPU disagree at {disagreements:?}");
    }
    let e = gradlab::train::inverse_temperature(f64::NAN).unwrap_err().to_string();
    assert!(e.contains("temperature"), "{e}");
    let e = block_on(run.generate(&[300], &[0.0, 0.5])).unwrap_err().to_string();
    assert!(e.contains("outside the vocabulary"), "{e}");
    let e = block_on(run.generate(&[1; 65], &[0.0, 0.5])).unwrap_err().to_string();
    assert!(e.contains("1 to 64 tokens"), "{e}");
}

/// Labs sharing one device (several elements on a page) each hear of an
/// error wgpu could not tie to a call, once, and a share made later hears
/// only of what came after it.
#[test]
fn shared_device_reports_an_uncaptured_error_to_every_holder() {
    let ctx = GpuContext::new_blocking().unwrap();
    let first = ctx.share();
    let second = ctx.share();
    // STORAGE with MAP_READ is invalid: a validation error nothing captures
    let _bad = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid on purpose"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let later = ctx.share();
    for (name, holder) in [("context", &ctx), ("first share", &first), ("second share", &second)] {
        let err = holder.check_errors().expect_err(name).to_string();
        assert!(err.contains("invalid on purpose") || err.contains("Usage"), "{name}: {err}");
        assert!(holder.check_errors().is_ok(), "{name} heard of the error twice");
    }
    assert!(later.check_errors().is_ok(), "a share made after the error heard of it");
}

/// A build in `scoped` that fails validation fails by itself: the error
/// comes back to the builder and no other holder of the device hears of it.
#[test]
fn a_scoped_build_keeps_its_errors_to_itself() {
    let ctx = GpuContext::new_blocking().unwrap();
    let other = ctx.share();
    let builder = ctx.share();
    let built = block_on(builder.scoped(|| {
        builder.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("invalid on purpose"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        })
    }));
    assert!(built.is_err(), "the invalid build was not refused");
    assert!(other.check_errors().is_ok(), "another holder heard of the scoped error");
    assert!(builder.check_errors().is_ok(), "the scoped error also went uncaptured");
    // and a good build passes
    assert!(block_on(builder.scoped(|| builder.storage("fine", 4))).is_ok());
}
