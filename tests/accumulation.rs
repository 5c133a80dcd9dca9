//! The accumulation strategies on the GPU: corrected accumulation gives the
//! full-batch gradient, naive does not (unless every micro-batch has the same
//! number of tokens), and each strategy logs the loss docs/DESIGN.md §1 says.
//! And the lab, written once against `Trainer`, behaves the same on both
//! backends.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use gradlab::accum::Strategy;
use gradlab::checks::Seed;
use gradlab::cpu::{CpuModel, FastCpuRun, ReferenceRun};
use gradlab::data::{shipped_corpus, Corpus, Packing};
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::lab::{Lab, LabConfig, RunGradient, RunMetrics};
use gradlab::model::{AdapterLayout, LoraConfig, ModelConfig, ParamLayout};
use gradlab::train::{Batch, Trainer};
use pollster::block_on;

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (d / n).sqrt()
}

fn corpus() -> Arc<Corpus> {
    Arc::new(shipped_corpus("kjv").unwrap())
}

/// nano with a context of 256: most verses fit whole, so lengths vary.
fn long_context() -> ModelConfig {
    ModelConfig { block_size: 256, ..ModelConfig::nano() }
}

/// Gradients of full batch, and of naive/corrected for G = 16, 8, 4, 2 on one batch.
fn sweep_gradients(ctx: &GpuContext, config: LabConfig) -> (Batch, LabConfig, Vec<RunGradient>) {
    let mut lab = Lab::new::<GpuRun>(ctx, config.clone(), corpus()).unwrap();
    let batch = lab.draw_batch();
    let grads = block_on(lab.gradients(&batch)).unwrap();
    (batch, config, grads)
}

/// The largest |G·N_g/N − 1| over the micro-batches of `b` sequences.
fn imbalance(batch: &Batch, b: usize, t: usize) -> f64 {
    let n_g: Vec<usize> = batch.micro_batches(b, t).unwrap().iter().map(|m| m.tokens()).collect();
    let n: usize = n_g.iter().sum();
    n_g.iter().map(|&x| (n_g.len() as f64 * x as f64 / n as f64 - 1.0).abs()).fold(0.0, f64::max)
}

#[test]
fn corrected_equals_full_batch_and_naive_does_not_with_ragged_lengths() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    let (batch, config, grads) = sweep_gradients(&ctx, LabConfig::sweep(long_context(), 16, 1.0, seed.0));
    let lens: Vec<usize> = batch.sequences.iter().map(Vec::len).collect();
    eprintln!("sequence lengths {lens:?}");
    assert!(lens.iter().min() < lens.iter().max());
    let full = &grads[0].grads;
    let all_runs = config.all_runs();
    for (spec, r) in config.runs.iter().zip(&grads[1..]) {
        let (e, loss) = (rel(&r.grads, full), r.logged_loss);
        let big_g = 16 / spec.micro_batch;
        eprintln!("{:?} G={big_g:>2}: ‖g − g_full‖/‖g_full‖ = {e:.2e}, logged loss {loss:.5}", spec.strategy);
        match spec.strategy {
            Strategy::Corrected => assert!(e < 1e-5, "corrected G={big_g} should equal full batch, rel {e:e}"),
            Strategy::Naive => {
                // naive reweights micro-batch g by N/(G·N_g): how far it lands from the full batch
                // depends on how unequal the N_g happen to be in this draw
                let n_g: Vec<usize> =
                    batch.micro_batches(spec.micro_batch, 256).unwrap().iter().map(|m| m.tokens()).collect();
                let imbalance = imbalance(&batch, spec.micro_batch, 256);
                let corrected = grads
                    .iter()
                    .zip(&all_runs)
                    .find(|(_, s)| s.strategy == Strategy::Corrected && s.micro_batch == spec.micro_batch);
                let corrected_e = rel(&corrected.unwrap().0.grads, full);
                eprintln!("    token counts {n_g:?}, largest |G·N_g/N − 1| = {imbalance:.3}");
                if imbalance > 0.01 {
                    assert!(
                        e > 1e-5 && e > 100.0 * corrected_e,
                        "naive G={big_g} should differ from full batch far more than corrected: {e:e} vs {corrected_e:e}"
                    );
                } else if imbalance == 0.0 {
                    assert!(e < 1e-5, "equal token counts: naive G={big_g} should equal full batch, rel {e:e}");
                }
                // a split within 1% of even moves naive by too little to tell from rounding reliably
            }
            Strategy::FullBatch | Strategy::Local => unreachable!(),
        }
    }
}

#[test]
fn equal_lengths_make_naive_equal_full_batch() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    let (batch, config, grads) = sweep_gradients(&ctx, LabConfig::sweep(ModelConfig::nano(), 16, 0.0, seed.0));
    assert!(batch.sequences.iter().all(|s| s.len() == 65));
    let full = &grads[0].grads;
    for (spec, r) in config.runs.iter().zip(&grads[1..]) {
        let (e, loss) = (rel(&r.grads, full), r.logged_loss);
        assert!(
            e < 1e-5,
            "{:?} b={} should equal full batch without padding, rel {e:e}",
            spec.strategy,
            spec.micro_batch
        );
        assert!(
            (loss - grads[0].logged_loss).abs() < 1e-5 * grads[0].logged_loss,
            "logged losses agree without padding"
        );
    }
}

#[test]
fn logged_losses_follow_the_design_table() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    let (batch, config, grads) = sweep_gradients(&ctx, LabConfig::sweep(long_context(), 16, 1.0, seed.0));
    let t = config.seq_len;
    // per-token losses from the f64 reference, cut into the same micro-batches
    let layout = ParamLayout::new(&config.model);
    let mut cpu = CpuModel::new(layout.clone(), &layout.init(config.seed));
    for (spec, r) in config.all_runs().iter().zip(&grads) {
        let logged = r.logged_loss;
        let mbs = batch.micro_batches(spec.micro_batch, t).unwrap();
        let g = mbs.len() as f64;
        let (mut sum, mut n, mut naive) = (0.0, 0usize, 0.0);
        for mb in &mbs {
            let losses = cpu.forward(&mb.inputs, &mb.targets, spec.micro_batch, t);
            let s: f64 = losses.iter().sum();
            sum += s;
            n += mb.tokens();
            naive += s / mb.tokens() as f64 / g;
        }
        let expected = match spec.strategy {
            Strategy::FullBatch | Strategy::Corrected => sum / n as f64,
            Strategy::Naive => naive,
            Strategy::Local => unreachable!("one rank"),
        };
        assert!(
            (logged - expected).abs() < 1e-5 * expected,
            "{:?} b={}: logged {logged}, table says {expected}",
            spec.strategy,
            spec.micro_batch
        );
    }
}

#[test]
fn a_refused_lab_step_leaves_the_runs_going() {
    let ctx = GpuContext::new_blocking().unwrap();
    refused_steps_change_nothing::<GpuRun>(&ctx);
    refused_steps_change_nothing::<ReferenceRun>(&());
    refused_steps_change_nothing::<FastCpuRun>(&());
}

/// A refused lab step (wrong count, too long, a token outside the
/// vocabulary) leaves every run going, on any backend.
fn refused_steps_change_nothing<R: Trainer>(device: &R::Device) {
    let mut lab = Lab::new::<R>(device, LabConfig::three_way(ModelConfig::nano(), 8, 2, 1.0, 5), corpus()).unwrap();
    block_on(lab.step()).unwrap();
    let mut batch = lab.draw_batch();
    batch.sequences.pop();
    batch.prompt_lengths.pop();
    let e = block_on(lab.step_on(&batch)).unwrap_err().to_string();
    assert!(e.contains("batch"), "{e}");
    let mut too_long = lab.draw_batch();
    too_long.sequences[0] = vec![1; 100];
    let e = block_on(lab.step_on(&too_long)).unwrap_err().to_string();
    assert!(e.contains("longer than the context"), "{e}");
    let mut outside = lab.draw_batch();
    outside.sequences[3][1] = 256;
    let e = block_on(lab.step_on(&outside)).unwrap_err().to_string();
    assert!(e.contains("outside the vocabulary"), "{e}");
    block_on(lab.step()).unwrap();
    let metrics = block_on(lab.flush()).unwrap();
    assert_eq!(metrics.len(), 2 * 3, "two good steps for three runs");
    assert!(metrics.iter().all(|m| m.logged_loss.is_finite() && m.weight_distance.is_finite()));
    assert_eq!(lab.steps(), 2);
    let bad = LabConfig::three_way(ModelConfig::nano(), 8, 3, 1.0, 5);
    assert!(Lab::new::<R>(device, bad, corpus()).err().unwrap().to_string().contains("does not divide"));
}

/// What one lab scenario produced on one backend.
struct Scenario {
    metrics: Vec<RunMetrics>,
    validation: Vec<f64>,
    text: String,
}

/// The same scenario on any backend, only through `Lab` and `Trainer`:
/// three lockstep steps, a validation pass, generated text.
fn scenario<R: Trainer>(device: &R::Device, config: &LabConfig) -> Scenario {
    let mut lab = Lab::new::<R>(device, config.clone(), corpus()).unwrap();
    for _ in 0..3 {
        block_on(lab.step()).unwrap();
    }
    let metrics = block_on(lab.flush()).unwrap();
    // 13 sequences are 7 micro-batches of 2, in groups of G = 2 slots on the GPU (the last alone, padded)
    let validation = block_on(lab.validation_loss(13)).unwrap();
    let text = block_on(lab.generate(1, "And ", 70, 0.0, 3)).unwrap();
    // reproducible by seed, bad temperatures refused
    assert_eq!(text, block_on(lab.generate(1, "And ", 70, 0.0, 3)).unwrap());
    let e = block_on(lab.generate(1, "And ", 5, -1.0, 3)).unwrap_err().to_string();
    assert!(e.contains("temperature"), "{e}");
    Scenario { metrics, validation, text }
}

/// Every data mode of docs/DESIGN.md §1: whole documents padded, packed
/// windows, fine-tuning with masked prompts at equal lengths, two ranks.
fn modes(seed: u64) -> Vec<(&'static str, LabConfig)> {
    let base = |b, micro| LabConfig::three_way(ModelConfig::nano(), b, micro, 1.0, seed);
    let packed = LabConfig { packing: Packing::Packed, ..base(4, 2) };
    let masked = LabConfig { mask_prompt: true, spread: 0.0, ..base(4, 1) };
    // LoRA on two of the four Linears, rank 3: the weights frozen, the adapters trained
    let lora = LabConfig { lora: Some(LoraConfig { rank: 3, alpha: 6.0, targets: 0b0110, seed }), ..base(4, 2) };
    vec![
        ("padded", base(4, 2)),
        ("packed", packed),
        ("masked", masked),
        ("two ranks", base(4, 1).with_ranks(2)),
        ("lora", lora),
    ]
}

#[test]
fn the_same_lab_scenario_agrees_on_the_gpu_and_the_cpu_backend() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    for (mode, config) in modes(seed.0) {
        eprintln!("mode {mode}");
        let gpu = scenario::<GpuRun>(&ctx, &config);
        let cpu = scenario::<ReferenceRun>(&(), &config);
        compare_backends(mode, &config, &gpu, &cpu);
    }
}

fn compare_backends(mode: &str, config: &LabConfig, gpu: &Scenario, cpu: &Scenario) {
    let (gpu_metrics, cpu_metrics) = (&gpu.metrics, &cpu.metrics);
    assert_eq!(gpu_metrics.len(), cpu_metrics.len());
    assert_eq!(gpu_metrics.len(), 3 * config.all_runs().len(), "{mode}");
    for (g, c) in gpu.validation.iter().zip(&cpu.validation) {
        assert!((g - c).abs() < 1e-4 * c, "{mode}: validation loss {g} vs {c}");
    }
    assert!(!gpu.text.is_empty() && !cpu.text.is_empty());
    eprintln!("greedy text, GPU: {:?}\n             CPU: {:?}", gpu.text, cpu.text);
    for (g, c) in gpu_metrics.iter().zip(cpu_metrics) {
        assert_eq!((g.step, g.run, g.tokens), (c.step, c.run, c.tokens));
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b.abs().max(1e-12);
        assert!(
            close(g.logged_loss, c.logged_loss, 1e-4),
            "{mode} step {} run {}: logged {} vs {}",
            g.step,
            g.run,
            g.logged_loss,
            c.logged_loss
        );
        assert!(close(g.true_loss, c.true_loss, 1e-4));
        assert!(close(g.grad_norm, c.grad_norm, 1e-3), "grad norm {} vs {}", g.grad_norm, c.grad_norm);
        match g.strategy {
            Strategy::Naive | Strategy::Local => {
                // the bug is not a precision effect: f32 and f64 drift apart alike.
                // Where counts are equal naive is the full batch and the GPU's distance
                // is f32 rounding alone: as large as corrected's at the same step.
                let corrected_f32 = gpu_metrics
                    .iter()
                    .find(|m| m.step == g.step && m.strategy == Strategy::Corrected)
                    .map_or(0.0, |m| m.weight_distance);
                let rounding = 1e-5f64.max(3.0 * corrected_f32);
                assert!(
                    (g.weight_distance - c.weight_distance).abs() <= 1e-2 * c.weight_distance + rounding,
                    "{mode}: {:?} distance {} (f32) vs {} (f64)",
                    g.strategy,
                    g.weight_distance,
                    c.weight_distance
                );
            }
            Strategy::Corrected => {
                // in f64 corrected is the full batch up to rounding of f64
                assert!(c.weight_distance < 1e-9, "{mode}: f64 corrected distance {}", c.weight_distance);
                assert!(g.weight_distance < 1e-3, "{mode}: f32 corrected distance {}", g.weight_distance);
            }
            Strategy::FullBatch => assert_eq!(c.weight_distance, 0.0),
        }
    }
}

#[test]
fn packed_windows_make_every_strategy_the_full_batch() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    let config = LabConfig { packing: Packing::Packed, ..LabConfig::sweep(ModelConfig::nano(), 16, 1.0, seed.0) };
    let (batch, config, grads) = sweep_gradients(&ctx, config);
    assert!(batch.sequences.iter().all(|s| s.len() == 65));
    for (spec, r) in config.runs.iter().zip(&grads[1..]) {
        let e = rel(&r.grads, &grads[0].grads);
        assert!(e < 1e-5, "packed: {:?} b={} differs from the full batch by {e:e}", spec.strategy, spec.micro_batch);
    }
}

#[test]
fn masked_prompts_at_equal_lengths_split_naive_from_full_but_not_corrected() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    let config = LabConfig { mask_prompt: true, ..LabConfig::sweep(ModelConfig::nano(), 16, 0.0, seed.0) };
    let (batch, config, grads) = sweep_gradients(&ctx, config);
    assert!(batch.sequences.iter().all(|s| s.len() == 65), "equal lengths");
    eprintln!("prompt lengths {:?}", batch.prompt_lengths);
    let full = &grads[0].grads;
    let mut naive_differed = false;
    for (spec, r) in config.runs.iter().zip(&grads[1..]) {
        let e = rel(&r.grads, full);
        let imbalance = imbalance(&batch, spec.micro_batch, 64);
        eprintln!("{:?} b={}: rel {e:.2e}, imbalance {imbalance:.3}", spec.strategy, spec.micro_batch);
        match spec.strategy {
            Strategy::Corrected => assert!(e < 1e-5, "corrected b={} should equal full, rel {e:e}", spec.micro_batch),
            Strategy::Naive if imbalance > 0.01 => {
                assert!(e > 1e-5, "naive b={} with masks should differ from full, rel {e:e}", spec.micro_batch);
                naive_differed = true;
            }
            _ => {}
        }
    }
    assert!(naive_differed, "prompts of different lengths unbalance some split: {:?}", batch.prompt_lengths);
}

#[test]
fn ranks_give_the_data_parallel_forms() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    // 8 sequences, micro-batches of 2, two ranks of two micro-batches each
    let two_ranks = LabConfig::three_way(long_context(), 8, 2, 1.0, seed.0).with_ranks(2);
    let specs = two_ranks.all_runs();
    assert_eq!(specs.iter().map(|s| s.strategy).collect::<Vec<_>>(), Strategy::ALL);
    let (batch, _, grads) = sweep_gradients(&ctx, two_ranks);
    let by = |s: Strategy| &grads[specs.iter().position(|x| x.strategy == s).unwrap()].grads;
    // one device, micro-batches of 4 (one per rank's share) and of 2
    let (_, _, shares) = sweep_gradients(&ctx, LabConfig::three_way(long_context(), 8, 4, 1.0, seed.0));
    let (_, _, one_device) = sweep_gradients(&ctx, LabConfig::three_way(long_context(), 8, 2, 1.0, seed.0));
    eprintln!("lengths {:?}", batch.sequences.iter().map(Vec::len).collect::<Vec<_>>());
    let e = rel(by(Strategy::Local), &shares[1].grads);
    assert!(e < 1e-5, "local over 2 ranks = naive over 2 micro-batches, rel {e:e}");
    let e = rel(by(Strategy::Naive), &one_device[1].grads);
    assert!(e < 1e-5, "naive over 2 ranks of 2 = naive over 4 micro-batches, rel {e:e}");
    let e = rel(by(Strategy::Corrected), by(Strategy::FullBatch));
    assert!(e < 1e-5, "corrected over ranks = full batch, rel {e:e}");
    if imbalance(&batch, 4, 256) > 0.01 {
        let e = rel(by(Strategy::Local), by(Strategy::FullBatch));
        assert!(e > 1e-5, "local over unequal ranks differs from the full batch, rel {e:e}");
    }
}

#[test]
fn lora_trains_only_adapters_and_corrected_equals_full_batch() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    let lora = LoraConfig::all_layers(4, seed.0);
    // G = 16, the seed's largest: full batch, naive and corrected
    let model = ModelConfig { block_size: 96, ..ModelConfig::nano() };
    let config = LabConfig { lora: Some(lora), ..LabConfig::three_way(model, 16, 1, 1.0, seed.0) };
    let base = ParamLayout::new(&config.model).init(seed.0 ^ 1);
    let mut lab = Lab::with_weights::<GpuRun>(&ctx, config.clone(), corpus(), &base).unwrap();
    for _ in 0..3 {
        block_on(lab.step()).unwrap();
    }
    let metrics = block_on(lab.flush()).unwrap();
    let adapters = AdapterLayout::new(&ParamLayout::new(&config.model), lora).unwrap();
    let weights = block_on(lab.weights(0)).unwrap();
    // only the adapted matrices moved: every other weight is the base, bit for bit
    let layout = ParamLayout::new(&config.model);
    for tv in &layout.tensors {
        let r = tv.offset..tv.offset + tv.len;
        let adapted = adapters.linears.iter().any(|l| l.weight.name == tv.name);
        let moved = weights[r.clone()] != base[r];
        assert_eq!(moved, adapted, "{}: moved {moved}, adapted {adapted}", tv.name);
    }
    let after = |step: u64| metrics.iter().filter(move |m| m.step == step);
    for m in after(3) {
        let big_g = 16 / m.micro_batch;
        eprintln!("{:?} G={big_g:>2}: ‖ΔW − ΔW_full‖ = {:.3e}", m.strategy, m.weight_distance);
        match m.strategy {
            // round-off only: the accumulated gradient sums its rows in another
            // order, and Adam's normalisation magnifies that on components
            // near zero (4.9e-6 on lavapipe, 4.3e-5 on an H200, whose weight
            // gradients split K; naive's distance is 8e-2 at the same seed)
            Strategy::Corrected => assert!(m.weight_distance < 1e-4, "corrected G={big_g}: {}", m.weight_distance),
            Strategy::Naive => assert!(m.weight_distance > 1e-4, "naive G={big_g}: {}", m.weight_distance),
            _ => {}
        }
    }
    // per adapted matrix: the chart's total is their root sum of squares
    let tensors = block_on(lab.tensor_distances()).unwrap();
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    let adapted: Vec<&str> = adapters.linears.iter().map(|l| l.weight.name.as_str()).collect();
    assert_eq!(names, adapted);
    for m in after(3) {
        let total = tensors.iter().map(|t| t.distances[m.run].powi(2)).sum::<f64>().sqrt();
        let e = (total - m.weight_distance).abs() / m.weight_distance.max(1e-6);
        assert!(e < 1e-2, "run {}: per-matrix {total:e} vs total {:e}", m.run, m.weight_distance);
    }
    // the gradient is the adapters' (A's is zero while B is: B starts at zero)
    let batch = lab.draw_batch();
    let grads = block_on(lab.gradients(&batch)).unwrap();
    assert_eq!(grads[0].grads.len(), adapters.total);
    for (spec, r) in config.all_runs().iter().zip(&grads).skip(1) {
        let e = rel(&r.grads, &grads[0].grads);
        if spec.strategy == Strategy::Corrected {
            assert!(e < 1e-5, "corrected b={}: adapter gradient {e:e} from the full batch's", spec.micro_batch);
        }
    }
}
