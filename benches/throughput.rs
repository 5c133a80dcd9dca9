//! Throughput, measured side by side in one run so the figures are ratios on
//! the same machine: a training step of the nano model on the GPU against the
//! same step on the f64 CPU reference, and a lab step (three runs, one
//! submission) against three separate run steps, and a corrected
//! accumulation step against a naive one (G = 4, padded documents); the f32
//! CPU backend's step against the f64 reference's, and its SIMD matmul's
//! GFLOP/s against the plain f32 loops' (and numpy's BLAS, when python3 has
//! numpy) at square and the nano model's shapes.
//! With `-- gpu` it adds the WGSL matmul's GFLOP/s on the adapter and a step
//! of every preset on the GPU against the f32 CPU backend (for a machine
//! with a real GPU; on a software adapter the larger presets take minutes).
//! `cargo bench --bench throughput` (`-- matmul`: the CPU matmul table alone)

/// Median seconds of `reps` calls of `f`, after one warm-up call.
#[cfg(not(target_arch = "wasm32"))]
fn median_seconds(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

/// One thread against rayon's whole pool, in turns: `rounds` rounds, each
/// timing a batch of calls of `f` on one thread and then on the pool. Answers
/// the median seconds per call on one thread and the median over the rounds
/// of (one thread / pool) within a round, so a slow spell of the machine
/// lands on both sides of a ratio.
#[cfg(not(target_arch = "wasm32"))]
fn one_thread_and_pool(rounds: usize, mut f: impl FnMut() + Send) -> (f64, f64) {
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
    let start = std::time::Instant::now();
    f();
    // calls per batch: about 50 ms of them
    let calls = (0.05 / start.elapsed().as_secs_f64().max(1e-6)).ceil().clamp(1.0, 1000.0) as usize;
    let batch = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..calls {
            f();
        }
        start.elapsed().as_secs_f64() / calls as f64
    };
    let (mut singles, mut gains): (Vec<f64>, Vec<f64>) = (0..rounds)
        .map(|_| {
            let single = one_thread.install(|| batch(&mut f));
            let pooled = batch(&mut f);
            (single, single / pooled)
        })
        .unzip();
    singles.sort_by(f64::total_cmp);
    gains.sort_by(f64::total_cmp);
    (singles[rounds / 2], gains[rounds / 2])
}

/// GFLOP/s of out [N,OC] = inp [N,C] · wᵀ, each on one thread: the SIMD
/// kernel, the plain f32 loops, and numpy's BLAS when python3 has numpy
/// (None otherwise); and how many times faster the SIMD kernel runs on every
/// thread of rayon's pool (timed in turns with one thread).
#[cfg(not(target_arch = "wasm32"))]
fn matmul_gflops(n: usize, c: usize, oc: usize) -> (f64, f64, Option<f64>, f64) {
    let mut rng = gradlab::rng::Rng::new(7);
    let mut randn = |len: usize| (0..len).map(|_| rng.normal() as f32).collect::<Vec<f32>>();
    let (inp, w, bias) = (randn(n * c), randn(oc * c), randn(oc));
    let mut out = vec![0.0f32; n * oc];
    let flops = 2.0 * (n * c * oc) as f64;
    let reps = if flops > 1e9 { 3 } else { 7 };
    let (simd, gain) =
        one_thread_and_pool(9, || gradlab::cpu::simd::matmul_forward(&mut out, &inp, &w, Some(&bias), n, c, oc));
    let plain = median_seconds(reps, || gradlab::cpu::matmul_forward(&mut out, &inp, &w, Some(&bias), n, c, oc));
    let script = format!(
        "import numpy as np, time\nx=np.random.rand({n},{c}).astype(np.float32)\nw=np.random.rand({oc},{c}).astype(np.float32)\nb=np.random.rand({oc}).astype(np.float32)\nx@w.T+b\nts=[]\nfor _ in range({reps}):\n t=time.perf_counter(); x@w.T+b; ts.append(time.perf_counter()-t)\nprint(sorted(ts)[len(ts)//2])"
    );
    let blas = std::process::Command::new("python3")
        .args(["-c", &script])
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok());
    (flops / simd / 1e9, flops / plain / 1e9, blas.map(|s| flops / s / 1e9), gain)
}

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

    use gradlab::cpu::{FastCpuRun, ReferenceRun};
    use gradlab::data::{shipped_corpus, BatchSampler, DataConfig, Packing};
    use gradlab::gpu::{GpuContext, GpuRun};
    use gradlab::lab::{Lab, LabConfig};
    use gradlab::model::{ModelConfig, ParamLayout};
    use gradlab::train::{RunConfig, StepWork, Trainer};

    // `cargo bench --bench throughput -- matmul`: the CPU matmul table alone
    if std::env::args().any(|a| a == "matmul") {
        return matmul_table();
    }
    let ctx = GpuContext::new_blocking().expect("a GPU adapter");
    let model = ModelConfig::nano();
    let (b, t) = (16, 64);
    let corpus = Arc::new(shipped_corpus("kjv").unwrap());
    let (batch, scale, config) = gradlab::bench::full_batch_step(&corpus, model, b, t).unwrap();
    let work = StepWork { micro_batches: &batch, scales: &scale };
    let init = ParamLayout::new(&model).init(1);
    let tokens = (b * t) as f64;

    let mut gpu = GpuRun::new(&ctx, config, &init).unwrap();
    let steps = 20;
    let gpu_step = seconds_per_step(&mut gpu, work, steps);
    let mut cpu = ReferenceRun::new(&(), config, &init).unwrap();
    let cpu_step = seconds_per_step(&mut cpu, work, 2);
    let mut fast = FastCpuRun::new(&(), config, &init).unwrap();
    let fast_step = seconds_per_step(&mut fast, work, 5);

    let mut lab = Lab::new::<GpuRun>(&ctx, LabConfig::three_way(model, b, 4, 0.0, 1), corpus.clone()).unwrap();
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
    println!("  CPU f32 run  {:>9.1} ms/step  {:>9.0} tokens/s", fast_step * 1e3, tokens / fast_step);
    println!("  GPU / CPU f64: {:.2}x   CPU f32 / CPU f64: {:.2}x", cpu_step / gpu_step, cpu_step / fast_step);
    // naive and corrected step G = 4 micro-batches each: on a GPU whose time
    // goes by dispatches, those cost more than the one full batch
    let runs_alone = gpu_step + (naive + corrected) / 3.0;
    println!("lab step (full batch + naive b=4 + corrected b=4, one submission):");
    println!("  {:>9.1} ms/step = {:.2} single full-batch run steps", lab_step * 1e3, lab_step / gpu_step);
    println!("  its three runs stepped alone: {:.1} ms; lab / those = {:.3}", runs_alone * 1e3, lab_step / runs_alone);
    println!("accumulation over G = {g} micro-batches of {} padded documents:", b / g);
    println!(
        "  naive {:.1} ms/step, corrected {:.1} ms/step: corrected / naive = {:.3}",
        naive / 3.0 * 1e3,
        corrected / 3.0 * 1e3,
        corrected / naive
    );
    matmul_table();
    if std::env::args().any(|a| a == "gpu") {
        gpu_matmul_table(&ctx);
        preset_table(&ctx, &corpus);
    }
    if std::env::args().any(|a| a == "gpu" || a == "profile") {
        profile_table(&ctx, &corpus, gpu_step);
    }
}

/// The shapes every matmul table measures: square, then the nano model's own.
#[cfg(not(target_arch = "wasm32"))]
const MATMUL_SHAPES: [(usize, usize, usize); 6] =
    [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (1024, 64, 192), (1024, 64, 256), (1024, 256, 64)];

/// GFLOP/s of gradlab's WGSL matmul on `ctx`'s adapter: a batch of
/// multiplies recorded in one submission, waited for by a one-float readback
/// (median of 5).
#[cfg(not(target_arch = "wasm32"))]
fn gpu_matmul_table(ctx: &gradlab::gpu::GpuContext) {
    use gradlab::bench::MatmulCase;
    use gradlab::gpu::MatmulKernel;
    println!("WGSL matmul on {}, GFLOP/s (median of 5 submissions):", ctx.adapter);
    println!("  {:<18} {:>10} {:>10} {:>10} {:>10}", "N x C -> OC", "as picked", "tiled", "direct", "dot4");
    // the table's first cell came out slow on a real GPU still clocking up: a
    // throwaway round of the first shape first
    for (i, (n, c, oc)) in std::iter::once(MATMUL_SHAPES[0]).chain(MATMUL_SHAPES).enumerate() {
        let mut rng = gradlab::rng::Rng::new(7);
        let mut randn = |len: usize| (0..len).map(|_| rng.normal() as f32).collect::<Vec<f32>>();
        let (inp, w, bias) = (randn(n * c), randn(oc * c), randn(oc));
        let gflops = |case: MatmulCase| {
            // enough multiplies per submission (about 50 ms of them) that the
            // submission's own cost and the readback are small beside them
            let ten = median_seconds(1, || pollster::block_on(case.run(ctx, 10)).unwrap());
            let times = ((10.0 * 0.05 / ten) as usize).clamp(10, 10_000);
            let secs = median_seconds(5, || pollster::block_on(case.run(ctx, times)).unwrap());
            case.flops() * times as f64 / secs / 1e9
        };
        let picked = gflops(MatmulCase::new(ctx, n, c, oc, &inp, &w, &bias).unwrap());
        if i == 0 {
            continue;
        }
        let forced = |kernel| gflops(MatmulCase::with_kernel(ctx, Some(kernel), n, c, oc, &inp, &w, &bias).unwrap());
        let (tiled, direct) = (forced(MatmulKernel::Tiled), forced(MatmulKernel::Direct));
        let dot4 = forced(MatmulKernel::Dot4);
        println!("  {:<18} {picked:>10.1} {tiled:>10.1} {direct:>10.1} {dot4:>10.1}", format!("{n}x{c}->{oc}"));
    }
}

/// Where a step's GPU time goes: one nano step (and with `-- gpu` one of
/// every preset) with each dispatch timed by the GPU's timestamps, summed
/// per kernel. Each dispatch then runs in a pass of its own, so the sum
/// bounds the kernels' time from above; beside it, the step's time as
/// measured without the timestamps.
#[cfg(not(target_arch = "wasm32"))]
fn profile_table(ctx: &gradlab::gpu::GpuContext, corpus: &std::sync::Arc<gradlab::data::Corpus>, nano_step: f64) {
    use gradlab::gpu::GpuRun;
    use gradlab::model::{ModelConfig, ParamLayout};
    use gradlab::train::{StepWork, Trainer};

    let presets = std::env::var("GRADLAB_BENCH_PRESETS").unwrap_or_else(|_| "nano,micro,small".into());
    let presets: Vec<&str> =
        if std::env::args().any(|a| a == "gpu") { presets.split(',').collect() } else { vec!["nano"] };
    for name in presets {
        let model = ModelConfig::preset(name).unwrap();
        let (b, t) = (16, model.block_size);
        let step = if name == "nano" {
            nano_step
        } else {
            let (batch, scale, config) = gradlab::bench::full_batch_step(corpus, model, b, t).unwrap();
            let mut run = GpuRun::new(ctx, config, &ParamLayout::new(&model).init(1)).unwrap();
            seconds_per_step(&mut run, StepWork { micro_batches: &batch, scales: &scale }, 5)
        };
        // the median of 5 profiled steps, kernel by kernel
        let profile = match pollster::block_on(gradlab::bench::profile_step(ctx, corpus, model, [b, t], 5)) {
            Ok(p) => p,
            Err(e) => return println!("no profile: {e}"),
        };
        let total: f64 = profile.kernels.iter().map(|k| k.seconds).sum();
        println!(
            "GPU time per kernel, {name} step (batch {b}x{t}, {} dispatches): {:.2} ms in dispatches, {:.2} ms a step",
            profile.dispatches,
            total * 1e3,
            step * 1e3
        );
        for gradlab::bench::KernelTime { kernel, count, seconds: secs } in profile.kernels {
            println!(
                "  {kernel:<36} {count:>4}x {:>9.3} ms {:>6.1}%  {:>8.1} us each",
                secs * 1e3,
                100.0 * secs / total,
                secs * 1e6 / count as f64
            );
        }
    }
}

/// One optimizer step of every preset at its own context, batch 16 of packed
/// windows: the GPU run against the f32 CPU backend.
#[cfg(not(target_arch = "wasm32"))]
fn preset_table(ctx: &gradlab::gpu::GpuContext, corpus: &std::sync::Arc<gradlab::data::Corpus>) {
    use gradlab::cpu::FastCpuRun;
    use gradlab::gpu::GpuRun;
    use gradlab::model::{ModelConfig, ParamLayout};
    use gradlab::train::{StepWork, Trainer};

    println!("one optimizer step per preset, batch 16 x the preset's context, AdamW:");
    println!("  {:<6} {:>10} {:>12} {:>12} {:>10}", "preset", "params", "GPU ms", "CPU f32 ms", "CPU / GPU");
    // GRADLAB_BENCH_PRESETS=nano,micro narrows it (a software adapter)
    let presets = std::env::var("GRADLAB_BENCH_PRESETS").unwrap_or_else(|_| "nano,micro,small".into());
    for name in presets.split(',') {
        let model = ModelConfig::preset(name).unwrap();
        let (b, t) = (16, model.block_size);
        let (batch, scale, config) = gradlab::bench::full_batch_step(corpus, model, b, t).unwrap();
        let work = StepWork { micro_batches: &batch, scales: &scale };
        let layout = ParamLayout::new(&model);
        let init = layout.init(1);
        let mut gpu = GpuRun::new(ctx, config, &init).unwrap();
        let gpu_step = seconds_per_step(&mut gpu, work, 10);
        let mut cpu = FastCpuRun::new(&(), config, &init).unwrap();
        let cpu_step = seconds_per_step(&mut cpu, work, 2);
        println!(
            "  {name:<6} {:>10} {:>12.2} {:>12.1} {:>10.1}",
            layout.num_params,
            gpu_step * 1e3,
            cpu_step * 1e3,
            cpu_step / gpu_step
        );
    }
}

/// The f32 CPU matmul's GFLOP/s at square and the nano model's shapes.
#[cfg(not(target_arch = "wasm32"))]
fn matmul_table() {
    let threads = rayon::current_num_threads();
    println!("matmul out[N,OC] = inp[N,C]·wᵀ + bias, f32, GFLOP/s (median); one thread, then SIMD on {threads}:");
    println!(
        "  {:<18} {:>8} {:>8} {:>8} {:>12} {:>10} {:>10}",
        "N x C -> OC", "SIMD", "plain", "BLAS", "SIMD / BLAS", "threads", "x 1 thread"
    );
    for (n, c, oc) in MATMUL_SHAPES {
        let (simd, plain, blas, gain) = matmul_gflops(n, c, oc);
        let (blas, ratio) = blas.map_or(("-".into(), "-".into()), |g| (format!("{g:.1}"), format!("{:.2}", simd / g)));
        let threaded = simd * gain;
        println!(
            "  {:<18} {simd:>8.1} {plain:>8.1} {blas:>8} {ratio:>12} {threaded:>10.1} {gain:>10.2}",
            format!("{n}x{c}->{oc}")
        );
    }
    // the whole f32 step of the nano model (batch 16 x 64, every product,
    // attention and the elementwise kernels), one thread against the pool
    use gradlab::cpu::FastCpuRun;
    use gradlab::model::{ModelConfig, ParamLayout};
    use gradlab::train::{StepWork, Trainer};
    let corpus = std::sync::Arc::new(gradlab::data::shipped_corpus("kjv").unwrap());
    let model = ModelConfig::nano();
    let (batch, scale, config) = gradlab::bench::full_batch_step(&corpus, model, 16, 64).unwrap();
    let mut run = FastCpuRun::new(&(), config, &ParamLayout::new(&model).init(1)).unwrap();
    let (single, gain) = one_thread_and_pool(7, || {
        let work = StepWork { micro_batches: &batch, scales: &scale };
        pollster::block_on(run.step(work)).unwrap();
        pollster::block_on(run.poll(true)).unwrap();
    });
    println!(
        "nano f32 CPU step, batch 16 x 64: {:.1} ms on one thread, {:.1} ms on {threads} ({gain:.2}x)",
        single * 1e3,
        single / gain * 1e3
    );
    // the lab of three runs (full batch, naive and corrected, G = 4): the
    // runs step at the same time where there are threads
    struct CpuLab(gradlab::lab::Lab);
    // SAFETY: a lab of CPU runs holds plain vectors and nothing tied to a
    // thread (a GPU lab would), and one thread at a time uses it
    unsafe impl Send for CpuLab {}
    impl CpuLab {
        fn step(&mut self) {
            pollster::block_on(self.0.step()).unwrap();
            pollster::block_on(self.0.flush()).unwrap();
        }
    }
    let config = gradlab::lab::LabConfig::three_way(model, 16, 4, 0.0, 1);
    let mut lab = CpuLab(gradlab::lab::Lab::new::<FastCpuRun>(&(), config, corpus).unwrap());
    let (single, gain) = one_thread_and_pool(7, || lab.step());
    println!(
        "nano f32 CPU lab of three runs, batch 16 x 64, G = 4: {:.1} ms on one thread, {:.1} ms on {threads} ({gain:.2}x)",
        single * 1e3,
        single / gain * 1e3
    );
}

#[cfg(target_arch = "wasm32")]
fn main() {}
