//! Throughput, measured side by side in one run so the figures are ratios on
//! the same machine: a training step of the nano model on the GPU against the
//! same step on the f64 CPU reference, and a lab step (three runs, one
//! submission) against three separate run steps.
//! `cargo bench --bench throughput`

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use std::sync::Arc;
    use std::time::Instant;

    use gradlab::cpu::CpuRun;
    use gradlab::data::{split_micro_batches, Corpus, Sampler};
    use gradlab::gpu::GpuContext;
    use gradlab::lab::{Lab, LabConfig};
    use gradlab::model::{ModelConfig, ParamLayout};
    use gradlab::train::{Run, RunConfig};

    let ctx = GpuContext::new_blocking().expect("a GPU adapter");
    let model = ModelConfig::nano();
    let (b, t) = (16, 64);
    let corpus = Arc::new(Corpus::from_text(gradlab::data::CORPUS).unwrap());
    let mut sampler = Sampler::new(corpus.clone(), 1, b, t, 0.0).unwrap();
    let batch = split_micro_batches(&sampler.next_batch(), b, t).unwrap();
    let scale = [1.0 / batch[0].tokens() as f32];
    let config = RunConfig { model, micro_batch: b, grad_accum: 1, seq_len: t, optimizer: Default::default() };
    let init = ParamLayout::new(&model).init(1);
    let tokens = (b * t) as f64;

    let mut gpu = Run::new(&ctx, config, &init).unwrap();
    pollster::block_on(gpu.step(&ctx, &batch, &scale)).unwrap();
    pollster::block_on(gpu.flush(&ctx)).unwrap();
    let steps = 20;
    let start = Instant::now();
    for _ in 0..steps {
        pollster::block_on(gpu.step(&ctx, &batch, &scale)).unwrap();
    }
    pollster::block_on(gpu.flush(&ctx)).unwrap();
    let gpu_step = start.elapsed().as_secs_f64() / steps as f64;

    let mut cpu = CpuRun::new(config, &init).unwrap();
    let cpu_steps = 2;
    let start = Instant::now();
    for _ in 0..cpu_steps {
        cpu.step(&batch, &scale).unwrap();
    }
    let cpu_step = start.elapsed().as_secs_f64() / cpu_steps as f64;

    let mut lab = Lab::new(&ctx, LabConfig::three_way(model, b, 4, 0.0, 1), corpus).unwrap();
    pollster::block_on(lab.step(&ctx)).unwrap();
    pollster::block_on(lab.flush(&ctx)).unwrap();
    let start = Instant::now();
    for _ in 0..steps {
        pollster::block_on(lab.step(&ctx)).unwrap();
    }
    pollster::block_on(lab.flush(&ctx)).unwrap();
    let lab_step = start.elapsed().as_secs_f64() / steps as f64;

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
}

#[cfg(target_arch = "wasm32")]
fn main() {}
