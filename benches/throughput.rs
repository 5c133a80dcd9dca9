//! Throughput, measured side by side in one run so the figures are ratios on
//! the same machine: a training step of the nano model on the GPU against the
//! same step on the f64 CPU reference, and a lab step (three runs, one
//! submission) against three separate run steps, and a corrected
//! accumulation step against a naive one (G = 4, padded documents).
//! `cargo bench --bench throughput`

/// Seconds per optimizer step of `run` on `work`, over `steps` steps after
/// one warm-up step, stats drained at the end: the same code for every backend.
#[cfg(not(target_arch = "wasm32"))]
fn seconds_per_step<R: gradlab::train::Trainer>(run: &mut R, work: gradlab::train::StepWork, steps: usize) -> f64 {
    use pollster::block_on;
    block_on(run.step(work)).unwrap();
    block_on(run.poll(true)).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..steps {
        block_on(run.step(work)).unwrap();
    }
    block_on(run.poll(true)).unwrap();
    start.elapsed().as_secs_f64() / steps as f64
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use std::sync::Arc;
    use std::time::Instant;

    use gradlab::cpu::CpuRun;
    use gradlab::data::{shipped_corpus, BatchSampler, DataConfig, Packing};
    use gradlab::gpu::{GpuContext, GpuRun};
    use gradlab::lab::{Lab, LabConfig};
    use gradlab::model::{ModelConfig, ParamLayout};
    use gradlab::train::{RunConfig, StepWork, Trainer};

    let ctx = GpuContext::new_blocking().expect("a GPU adapter");
    let model = ModelConfig::nano();
    let (b, t) = (16, 64);
    let corpus = Arc::new(shipped_corpus("kjv").unwrap());
    let full_windows = DataConfig { packing: Packing::Packed, ..Default::default() };
    let mut sampler = BatchSampler::new(corpus.clone(), 1, b, t, full_windows).unwrap();
    let batch = sampler.next_batch().micro_batches(b, t).unwrap();
    let scale = [1.0 / batch[0].tokens() as f32];
    let work = StepWork { micro_batches: &batch, scales: &scale };
    let config =
        RunConfig { model, micro_batch: b, grad_accum: 1, seq_len: t, optimizer: Default::default(), lora: None };
    let init = ParamLayout::new(&model).init(1);
    let tokens = (b * t) as f64;

    let mut gpu = GpuRun::new(&ctx, config, &init).unwrap();
    let steps = 20;
    let gpu_step = seconds_per_step(&mut gpu, work, steps);
    let mut cpu = CpuRun::new(&(), config, &init).unwrap();
    let cpu_step = seconds_per_step(&mut cpu, work, 2);

    let mut lab = Lab::<GpuRun>::new(&ctx, LabConfig::three_way(model, b, 4, 0.0, 1), corpus.clone()).unwrap();
    pollster::block_on(lab.step()).unwrap();
    pollster::block_on(lab.flush()).unwrap();
    let start = Instant::now();
    for _ in 0..steps {
        pollster::block_on(lab.step()).unwrap();
    }
    pollster::block_on(lab.flush()).unwrap();
    let lab_step = start.elapsed().as_secs_f64() / steps as f64;

    // naive and corrected: the same G micro-batches, only the scales differ
    let padded = DataConfig { packing: Packing::Padded, ..Default::default() };
    let mut docs = BatchSampler::new(corpus.clone(), 1, b, t, padded).unwrap();
    let g = 4;
    let accum_batch = docs.next_batch().micro_batches(b / g, t).unwrap();
    let counts: Vec<usize> = accum_batch.iter().map(|m| m.tokens()).collect();
    let accum_config = RunConfig { micro_batch: b / g, grad_accum: g, ..config };
    let accum_step = |strategy| {
        let scales = gradlab::accum::scales(strategy, &counts, 1);
        let mut run = GpuRun::new(&ctx, accum_config, &init).unwrap();
        seconds_per_step(&mut run, StepWork { micro_batches: &accum_batch, scales: &scales }, steps)
    };
    // interleaved, so a drift in the machine's speed falls on both
    let (mut naive, mut corrected) = (0.0, 0.0);
    for _ in 0..3 {
        naive += accum_step(gradlab::accum::Strategy::Naive);
        corrected += accum_step(gradlab::accum::Strategy::Corrected);
    }

    println!("adapter: {}", ctx.adapter);
    println!("nano, batch {b}x{t}, AdamW, one optimizer step:");
    println!(
        "  GPU run      {:>9.1} ms/step  {:>9.0} tokens/s  ({} dispatches in one submission)",
        gpu_step * 1e3,
        tokens / gpu_step,
        gpu.dispatches_per_step()
    );
    println!("  CPU f64 run  {:>9.1} ms/step  {:>9.0} tokens/s", cpu_step * 1e3, tokens / cpu_step);
    println!("  GPU / CPU speed-up: {:.1}x", cpu_step / gpu_step);
    println!("lab step (full batch + naive b=4 + corrected b=4, one submission):");
    println!("  {:>9.1} ms/step = {:.2} single full-batch run steps", lab_step * 1e3, lab_step / gpu_step);
    println!("accumulation over G = {g} micro-batches of {} padded documents:", b / g);
    println!(
        "  naive {:.1} ms/step, corrected {:.1} ms/step: corrected / naive = {:.3}",
        naive / 3.0 * 1e3,
        corrected / 3.0 * 1e3,
        corrected / naive
    );
}

#[cfg(target_arch = "wasm32")]
fn main() {}
