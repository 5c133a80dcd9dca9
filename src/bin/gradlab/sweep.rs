//! `sweep`: the reference experiment (`lab::experiment`) — full batch, naive
//! and corrected (and, with ranks, local) accumulation at every micro-batch
//! size, in lockstep — over one or more seeds, on the GPU or a CPU backend
//! (f64 or f32), with its table (mean ± sample standard deviation over
//! seeds), CSV/JSON files and optional weights. Its defaults are the
//! reference's, except one seed, the preset's own context and a validation
//! pass every 50 steps (README.md gives the reference's command line).

use std::collections::BTreeMap;
use std::sync::Arc;

use gradlab::accum::Strategy;
use gradlab::checkpoint::to_safetensors;
use gradlab::cpu::{FastCpuRun, ReferenceRun};
use gradlab::data::Corpus;
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::lab::experiment::{final_mean, MeanSd, REFERENCE};
use gradlab::lab::{Backend, Lab, LabConfig, RunMetrics, RunSpec};
use gradlab::model::{AdapterLayout, ParamLayout};
use gradlab::optim::{OptimizerConfig, OptimizerKind, Schedule};
use gradlab::train::Trainer;
use pollster::block_on;
use serde::Serialize;

use crate::common::{adapters_file, each_in_parallel, read_weights, start_lab_adapters, write, AnyError, LabArgs};
use crate::csv::to_csv;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Optimizer steps.
    #[arg(long, default_value_t = REFERENCE.steps)]
    pub steps: u64,
    /// Peak learning rate.
    #[arg(long, default_value_t = REFERENCE.lr)]
    pub lr: f64,
    /// sgd, momentum, adam or adamw.
    #[arg(long, default_value_t = REFERENCE.optimizer_name())]
    pub optimizer: String,
    /// constant, or cosine: linear warm-up over --warmup steps, then cosine
    /// decay to a tenth of --lr at the last step (long runs settle instead of
    /// wandering at the peak rate).
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Linear warm-up steps from 0 to --lr, under either schedule (a
    /// constant schedule with a warm-up holds --lr after it).
    #[arg(long, default_value_t = 0)]
    pub warmup: u32,
    /// Seeds --seed, --seed+1, ...: every figure is reported as mean ± sd.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// gpu (WGSL kernels, f32), cpu (gradlab's f32 CPU backend) or reference
    /// (the f64 reference); on either CPU backend the seeds run in parallel.
    /// `cpu-f32` is taken as the old spelling of `cpu`.
    #[arg(long, default_value = "gpu")]
    pub backend: String,
    /// Held-out sequences each validation pass measures.
    #[arg(long, default_value_t = REFERENCE.val_sequences)]
    pub val_sequences: usize,
    /// Validation loss of every run every this many steps (0: only at the end).
    #[arg(long, default_value_t = 50)]
    pub eval_every: u64,
    /// Directory for sweep.csv, summary.csv, sweep.json, curves.csv,
    /// validation.csv and tensors.csv (each trained matrix's final distance
    /// to the full batch's; under LoRA each adapted Linear's).
    #[arg(long, default_value = "sweep-out")]
    pub out: std::path::PathBuf,
    /// Print the result as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also save every run's final weights there as safetensors (under
    /// LoRA the merged weights, and each run's adapters beside them as
    /// adapters_<strategy>_b<b>.safetensors, which --adapters reads).
    #[arg(long)]
    pub save_weights: bool,
    /// Start every run from these weights (safetensors) instead of a fresh init.
    #[arg(long)]
    pub init: Option<std::path::PathBuf>,
}

/// One run of one seed: a line of sweep.csv and of sweep.json's `rows`,
/// the columns in the fields' order.
#[derive(Debug, Clone, Serialize)]
struct SweepRow {
    seed: u64,
    strategy: Strategy,
    micro_batch: usize,
    micro_batches: usize,
    /// "final" of the logged loss (`experiment::final_mean`: the mean over
    /// the last tenth of the steps).
    final_loss: f64,
    /// Mean logged loss over all steps.
    mean_loss: f64,
    /// final_loss minus the full-batch run's.
    gap_to_full: f64,
    /// "final" of the true token-mean loss.
    final_true_loss: f64,
    /// final_true_loss minus the full-batch run's.
    true_gap_to_full: f64,
    /// Mean over all steps of logged minus true loss: how the trainer's
    /// printed loss misreports the objective (0 for full and corrected).
    logged_minus_true: f64,
    /// ‖w − w_full‖ after the first step: the gradients' difference alone,
    /// before Adam's normalisation amplifies any difference.
    first_step_distance: f64,
    /// ‖w − w_full‖ after the last step.
    weight_distance: f64,
    validation_loss: f64,
    /// validation_loss minus the full-batch run's, on the same held-out
    /// sequences: the harm to the objective, paired within a seed.
    validation_gap_to_full: f64,
}

/// One run over all seeds, each figure of `SweepRow` as its mean ± sd: a
/// line of summary.csv (`<figure>_mean,<figure>_sd`) and of sweep.json's
/// `summary`.
#[derive(Debug, Serialize)]
struct SummaryRow {
    strategy: Strategy,
    micro_batch: usize,
    micro_batches: usize,
    seeds: usize,
    final_loss: MeanSd,
    gap_to_full: MeanSd,
    final_true_loss: MeanSd,
    true_gap_to_full: MeanSd,
    logged_minus_true: MeanSd,
    first_step_distance: MeanSd,
    weight_distance: MeanSd,
    validation_loss: MeanSd,
    validation_gap_to_full: MeanSd,
}

/// One run's step of one seed: a line of curves.csv.
#[derive(Debug, Serialize)]
struct CurveRow {
    seed: u64,
    step: u64,
    run: usize,
    strategy: Strategy,
    micro_batch: usize,
    logged_loss: f64,
    true_loss: f64,
    weight_distance: f64,
    grad_norm: f64,
    tokens_per_second: f64,
}

/// One run's validation loss at one step of one seed: a line of validation.csv.
#[derive(Debug, Serialize)]
struct ValidationRow {
    seed: u64,
    step: u64,
    run: usize,
    strategy: Strategy,
    micro_batch: usize,
    validation_loss: f64,
}

/// One trained matrix's final distance to the full batch's in one run of one
/// seed: a line of tensors.csv.
#[derive(Debug, Serialize)]
struct TensorRow {
    seed: u64,
    run: usize,
    strategy: Strategy,
    micro_batch: usize,
    tensor: String,
    distance: f64,
}

/// What one seed produced.
struct SeedResult {
    rows: Vec<SweepRow>,
    metrics: Vec<RunMetrics>,
    validation: Vec<ValidationRow>,
    tensors: Vec<TensorRow>,
    weights: Vec<Vec<f32>>,
    /// Under LoRA with --save-weights, every run's final adapters.
    adapters: Vec<Vec<f32>>,
    seconds: f64,
}

/// The lab of one seed on backend `R`, start to finish.
fn run_seed<R: Trainer>(
    device: &R::Device,
    config: LabConfig,
    corpus: Arc<Corpus>,
    start: Start<'_>,
    args: &Args,
    bar: &indicatif::ProgressBar,
) -> Result<SeedResult, AnyError> {
    let seed = config.seed;
    let mut lab = match start.weights {
        Some(weights) => Lab::with_weights::<R>(device, config.clone(), corpus, weights)?,
        None => Lab::new::<R>(device, config.clone(), corpus)?,
    };
    if let Some(adapters) = start.adapters {
        start_lab_adapters(&mut lab, adapters)?;
    }
    let started = std::time::Instant::now();
    let mut metrics: Vec<RunMetrics> = Vec::new();
    let mut validation_rows = Vec::new();
    let mut record_validation = |lab: &mut Lab, step: u64| -> Result<Vec<f64>, AnyError> {
        let losses = block_on(lab.validation_loss(args.val_sequences))?;
        for (run, (spec, &validation_loss)) in lab.specs().iter().zip(&losses).enumerate() {
            let (strategy, micro_batch) = (spec.strategy, spec.micro_batch);
            validation_rows.push(ValidationRow { seed, step, run, strategy, micro_batch, validation_loss });
        }
        Ok(losses)
    };
    for step in 1..=args.steps {
        block_on(lab.step())?;
        if args.eval_every > 0 && step % args.eval_every == 0 && step != args.steps {
            record_validation(&mut lab, step)?;
        }
        let fresh = block_on(lab.poll())?;
        if let Some(m) = fresh.iter().rev().find(|m| m.run == 0) {
            bar.set_message(format!("seed {seed}: full-batch loss {:.3}", m.true_loss));
        }
        metrics.extend(fresh);
        bar.inc(1);
    }
    metrics.extend(block_on(lab.flush())?);
    let seconds = started.elapsed().as_secs_f64();
    let validation = record_validation(&mut lab, args.steps)?;

    let mut rows = Vec::new();
    for (i, spec) in lab.specs().iter().enumerate() {
        let run: Vec<&RunMetrics> = metrics.iter().filter(|m| m.run == i).collect();
        // one value per step, as "final" takes them
        let per_step = |f: fn(&RunMetrics) -> f64| run.iter().map(|m| f(m)).collect::<Vec<f64>>();
        let mean = |xs: Vec<f64>| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
        rows.push(SweepRow {
            seed,
            strategy: spec.strategy,
            micro_batch: spec.micro_batch,
            micro_batches: config.batch / spec.micro_batch,
            final_loss: final_mean(&per_step(|m| m.logged_loss)),
            mean_loss: mean(per_step(|m| m.logged_loss)),
            gap_to_full: 0.0,
            final_true_loss: final_mean(&per_step(|m| m.true_loss)),
            true_gap_to_full: 0.0,
            logged_minus_true: mean(per_step(|m| m.logged_loss - m.true_loss)),
            first_step_distance: run.first().map(|m| m.weight_distance).unwrap_or(0.0),
            weight_distance: run.last().map(|m| m.weight_distance).unwrap_or(0.0),
            validation_loss: validation[i],
            validation_gap_to_full: validation[i] - validation[0],
        });
    }
    let (full_final, full_true) = (rows[0].final_loss, rows[0].final_true_loss);
    for r in &mut rows {
        r.gap_to_full = r.final_loss - full_final;
        r.true_gap_to_full = r.final_true_loss - full_true;
    }
    let mut tensors = Vec::new();
    for t in block_on(lab.tensor_distances())? {
        for (run, (spec, &distance)) in lab.specs().iter().zip(&t.distances).enumerate() {
            let (strategy, micro_batch, tensor) = (spec.strategy, spec.micro_batch, t.name.clone());
            tensors.push(TensorRow { seed, run, strategy, micro_batch, tensor, distance });
        }
    }
    let (mut weights, mut adapters) = (Vec::new(), Vec::new());
    if args.save_weights {
        for i in 0..lab.specs().len() {
            weights.push(block_on(lab.weights(i))?);
        }
        if config.lora.is_some() {
            let narrow = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            adapters = block_on(lab.state())?.runs.iter().filter_map(|r| r.adapters.as_deref().map(narrow)).collect();
        }
    }
    Ok(SeedResult { rows, metrics, validation: validation_rows, tensors, weights, adapters, seconds })
}

/// What every run of every seed starts from: `--init`'s weights (else each
/// seed's fresh init) and `--adapters`' adapters (else their seeded init).
#[derive(Clone, Copy)]
struct Start<'a> {
    weights: Option<&'a [f32]>,
    adapters: Option<&'a [f32]>,
}

/// Every seed's lab on CPU backend `R` (`each_in_parallel`).
fn run_seeds_in_parallel<R: Trainer<Device = ()>>(
    configs: Vec<LabConfig>,
    corpus: &Arc<Corpus>,
    start: Start<'_>,
    args: &Args,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<SeedResult>, AnyError> {
    each_in_parallel(configs.len(), |i| {
        run_seed::<R>(&(), configs[i].clone(), corpus.clone(), start, args, bar).map_err(|e| e.to_string())
    })
}

pub fn run(args: Args) -> Result<(), AnyError> {
    let model = args.lab.model()?;
    let (corpus, corpus_name) = args.lab.corpus()?;
    let mut base = LabConfig::sweep(model, args.lab.batch, args.lab.spread, args.lab.seed);
    let schedule = match args.schedule.as_str() {
        "constant" if args.warmup == 0 => Schedule::Constant,
        "constant" => Schedule::Warmup { warmup: args.warmup },
        "cosine" => Schedule::Cosine {
            warmup: args.warmup,
            total: u32::try_from(args.steps).map_err(|_| "--steps: too many for a cosine schedule")?,
            min_ratio: 0.1,
        },
        other => return Err(format!("--schedule must be constant or cosine, got {other:?}").into()),
    };
    if args.warmup as u64 >= args.steps.max(1) {
        return Err(format!("--warmup must be below --steps ({}), got {}", args.steps, args.warmup).into());
    }
    base.optimizer =
        OptimizerConfig { kind: args.optimizer.parse::<OptimizerKind>()?, lr: args.lr, schedule, ..Default::default() };
    let config = args.lab.apply(base)?;
    if args.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    if args.seeds == 0 || args.seeds > 100 {
        return Err(format!("--seeds must be between 1 and 100, got {}", args.seeds).into());
    }
    let backend = crate::common::backend(&args.backend)?;
    let start_adapters = args.lab.lora.start(&model, config.lora)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    let layout = ParamLayout::new(&model);
    let init = args.init.as_deref().map(|path| read_weights(path, &model)).transpose()?;
    let start = Start { weights: init.as_deref(), adapters: start_adapters.as_ref().map(|s| s.values.as_slice()) };
    let seeds: Vec<u64> = (0..args.seeds).map(|i| args.lab.seed + i).collect();
    let bar = indicatif::ProgressBar::new(args.steps * args.seeds);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let seed_config = |seed: u64| LabConfig { seed, ..config.clone() };
    let started = std::time::Instant::now();
    let (hardware, results): (String, Vec<SeedResult>) = if backend == Backend::Gpu {
        let ctx = GpuContext::new_blocking()?;
        announce(&args, &layout, &ctx.adapter.to_string(), &corpus_name, &config);
        let results = seeds
            .iter()
            .map(|&s| run_seed::<GpuRun>(&ctx, seed_config(s), corpus.clone(), start, &args, &bar))
            .collect::<Result<Vec<_>, _>>()?;
        (ctx.adapter.to_string(), results)
    } else {
        // the names sweep.json has always recorded
        let hardware = if backend == Backend::Reference { "CPU (f64 reference)" } else { "CPU (f32)" }.to_string();
        announce(&args, &layout, &hardware, &corpus_name, &config);
        let configs: Vec<LabConfig> = seeds.iter().map(|&s| seed_config(s)).collect();
        let results = if backend == Backend::Reference {
            run_seeds_in_parallel::<ReferenceRun>(configs, &corpus, start, &args, &bar)?
        } else {
            run_seeds_in_parallel::<FastCpuRun>(configs, &corpus, start, &args, &bar)?
        };
        (hardware, results)
    };
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();

    let specs: Vec<RunSpec> = config.all_runs();
    let rows: Vec<SweepRow> = results.iter().flat_map(|r| r.rows.iter().cloned()).collect();
    let summary: Vec<SummaryRow> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let of = |f: fn(&SweepRow) -> f64| MeanSd::of(&results.iter().map(|r| f(&r.rows[i])).collect::<Vec<_>>());
            SummaryRow {
                strategy: spec.strategy,
                micro_batch: spec.micro_batch,
                micro_batches: config.batch / spec.micro_batch,
                seeds: seeds.len(),
                final_loss: of(|r| r.final_loss),
                gap_to_full: of(|r| r.gap_to_full),
                final_true_loss: of(|r| r.final_true_loss),
                true_gap_to_full: of(|r| r.true_gap_to_full),
                logged_minus_true: of(|r| r.logged_minus_true),
                first_step_distance: of(|r| r.first_step_distance),
                weight_distance: of(|r| r.weight_distance),
                validation_loss: of(|r| r.validation_loss),
                validation_gap_to_full: of(|r| r.validation_gap_to_full),
            }
        })
        .collect();

    let json = serde_json::json!({
        "config": config, "backend": hardware, "corpus": corpus_name, "steps": args.steps,
        "seeds": seeds, "summary": summary, "rows": rows,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_table(&summary, seeds.len());
    }
    let tokens: usize = results.iter().flat_map(|r| r.metrics.iter()).filter(|m| m.run == 0).map(|m| m.tokens).sum();
    let busy: f64 = results.iter().map(|r| r.seconds).sum();
    eprintln!(
        "gradlab sweep: {} seed(s) x {} lab steps in {:.1}s on {hardware} ({:.0} tokens/s per run while stepping)",
        seeds.len(),
        args.steps,
        secs,
        tokens as f64 / busy.max(1e-9)
    );

    let curves: Vec<CurveRow> = seeds
        .iter()
        .zip(&results)
        .flat_map(|(&seed, r)| {
            r.metrics.iter().map(move |m| CurveRow {
                seed,
                step: m.step,
                run: m.run,
                strategy: m.strategy,
                micro_batch: m.micro_batch,
                logged_loss: m.logged_loss,
                true_loss: m.true_loss,
                weight_distance: m.weight_distance,
                grad_norm: m.grad_norm,
                tokens_per_second: m.tokens_per_second,
            })
        })
        .collect();
    let validation: Vec<&ValidationRow> = results.iter().flat_map(|r| &r.validation).collect();
    let tensors: Vec<&TensorRow> = results.iter().flat_map(|r| &r.tensors).collect();
    write(&args.out.join("sweep.csv"), to_csv(&rows)?.as_bytes())?;
    write(&args.out.join("summary.csv"), to_csv(&summary)?.as_bytes())?;
    write(&args.out.join("sweep.json"), serde_json::to_string_pretty(&json)?.as_bytes())?;
    write(&args.out.join("validation.csv"), to_csv(&validation)?.as_bytes())?;
    write(&args.out.join("tensors.csv"), to_csv(&tensors)?.as_bytes())?;
    write(&args.out.join("curves.csv"), to_csv(&curves)?.as_bytes())?;
    for (seed, r) in seeds.iter().zip(&results) {
        for (spec, w) in specs.iter().zip(&r.weights) {
            let suffix = if seeds.len() > 1 { format!("_seed{seed}") } else { String::new() };
            let name = format!("weights_{}_b{}{suffix}.safetensors", spec.strategy.name(), spec.micro_batch);
            let meta = BTreeMap::from([
                ("strategy".to_string(), spec.strategy.name().to_string()),
                ("micro_batch".to_string(), spec.micro_batch.to_string()),
                ("seed".to_string(), seed.to_string()),
            ]);
            write(&args.out.join(name), &to_safetensors(&layout, w, Some(meta.into_iter().collect()))?)?;
        }
        if let Some(lora) = config.lora {
            let adapter_layout = AdapterLayout::new(&layout, lora)?;
            let done = start_adapters.as_ref().map_or(0, |s| s.steps) + args.steps;
            for (spec, a) in specs.iter().zip(&r.adapters) {
                let suffix = if seeds.len() > 1 { format!("_seed{seed}") } else { String::new() };
                let name = format!("adapters_{}_b{}{suffix}.safetensors", spec.strategy.name(), spec.micro_batch);
                let meta = [
                    ("strategy", spec.strategy.name().to_string()),
                    ("micro_batch", spec.micro_batch.to_string()),
                    ("seed", seed.to_string()),
                ];
                write(&args.out.join(name), &adapters_file(&adapter_layout, a, done, &meta)?)?;
            }
        }
    }
    eprintln!(
        "gradlab sweep: wrote sweep.csv, summary.csv, sweep.json, curves.csv, validation.csv, tensors.csv to {}",
        args.out.display()
    );
    Ok(())
}

fn announce(args: &Args, layout: &ParamLayout, hardware: &str, corpus: &str, config: &LabConfig) {
    eprintln!(
        "gradlab sweep: {} ({} parameters{}) from {} on {hardware}; corpus {corpus}; batch {} x {} positions, {:?}, spread {}, mask_prompt {}, {} rank(s); {} runs, {} steps, {} seed(s)",
        args.lab.preset,
        layout.num_params,
        match config.lora {
            Some(l) => format!(", frozen; LoRA r={} α={} on {}", l.rank, l.alpha, l.targets().iter().map(|t| t.key()).collect::<Vec<_>>().join(",")),
            None => String::new(),
        },
        args.init.as_ref().map_or("a fresh init".to_string(), |p| p.display().to_string())
            + &args.lab.lora.adapters.as_ref().map_or(String::new(), |a| format!(" with the adapters of {}", a.display())),
        config.batch,
        config.seq_len,
        config.packing,
        config.spread,
        config.mask_prompt,
        config.ranks,
        config.all_runs().len(),
        args.steps,
        args.seeds
    );
}

/// `value` or `mean ± sd` when there is more than one seed.
fn cell(v: MeanSd, seeds: usize, digits: usize, signed: bool, sci: bool) -> String {
    let f = |x: f64| match (sci, signed) {
        (true, true) => format!("{x:+.2e}"),
        (true, false) => format!("{x:.2e}"),
        (false, true) => format!("{x:+.digits$}"),
        (false, false) => format!("{x:.digits$}"),
    };
    if seeds > 1 {
        format!(
            "{} ± {}",
            f(v.mean),
            match sci {
                true => format!("{:.1e}", v.sd),
                false => format!("{:.digits$}", v.sd),
            }
        )
    } else {
        f(v.mean)
    }
}

fn print_table(rows: &[SummaryRow], seeds: usize) {
    let w = if seeds > 1 { 20 } else { 11 };
    println!(
        "{:<10} {:>3} {:>3} {:>w$} {:>w$} {:>w$} {:>w$} {:>w$} {:>w$} {:>w$}",
        "strategy",
        "b",
        "G",
        "true loss",
        "true gap",
        "logged − true",
        "‖Δw‖ step 1",
        "‖Δw‖ end",
        "val loss",
        "val gap"
    );
    for r in rows {
        println!(
            "{:<10} {:>3} {:>3} {:>w$} {:>w$} {:>w$} {:>w$} {:>w$} {:>w$} {:>w$}",
            r.strategy.name(),
            r.micro_batch,
            r.micro_batches,
            cell(r.final_true_loss, seeds, 4, false, false),
            cell(r.true_gap_to_full, seeds, 2, true, true),
            cell(r.logged_minus_true, seeds, 2, true, true),
            cell(r.first_step_distance, seeds, 3, false, true),
            cell(r.weight_distance, seeds, 3, false, true),
            cell(r.validation_loss, seeds, 4, false, false),
            cell(r.validation_gap_to_full, seeds, 2, true, true),
        );
    }
    if seeds > 1 {
        println!("(mean ± sample standard deviation over {seeds} seeds; ‖Δw‖ = ‖w − w_full‖)");
    }
}
