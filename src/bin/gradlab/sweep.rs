//! `sweep`: the reference experiment — full batch, naive and corrected
//! accumulation at every micro-batch size, in lockstep on the GPU — with its
//! table, CSV/JSON files and optional weights.

use std::collections::BTreeMap;

use gradlab::accum::Strategy;
use gradlab::checkpoint::{from_safetensors, to_safetensors};
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::lab::{Lab, LabConfig, RunMetrics, RunSpec};
use gradlab::model::{ModelConfig, ParamLayout};
use gradlab::optim::{OptimizerConfig, OptimizerKind};
use pollster::block_on;
use serde::Serialize;

use crate::common::{write, AnyError, LabArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    pub steps: u64,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// sgd, momentum, adam or adamw.
    #[arg(long, default_value = "adamw")]
    pub optimizer: String,
    /// Validation loss of every run every this many steps (0: only at the end).
    #[arg(long, default_value_t = 50)]
    pub eval_every: u64,
    /// Directory for sweep.csv, sweep.json, curves.csv and validation.csv.
    #[arg(long, default_value = "sweep-out")]
    pub out: std::path::PathBuf,
    /// Print the result as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also save every run's final weights there as safetensors.
    #[arg(long)]
    pub save_weights: bool,
    /// Start every run from these weights (safetensors) instead of a fresh init.
    #[arg(long)]
    pub init: Option<std::path::PathBuf>,
}

/// One row of the sweep table.
#[derive(Debug, Serialize)]
struct SweepRow {
    strategy: Strategy,
    micro_batch: usize,
    micro_batches: usize,
    /// Mean logged loss over the last tenth of the steps.
    final_loss: f64,
    /// Mean logged loss over all steps.
    mean_loss: f64,
    /// final_loss minus the full-batch run's.
    gap_to_full: f64,
    /// Mean true token-mean loss over the last tenth of the steps.
    final_true_loss: f64,
    /// ‖w − w_full‖ after the last step.
    weight_distance: f64,
    validation_loss: f64,
}

pub fn run(args: Args) -> Result<(), AnyError> {
    let model = ModelConfig::preset(&args.lab.preset)?;
    let (corpus, corpus_name) = args.lab.corpus()?;
    let mut config = LabConfig::sweep(model, args.lab.batch, args.lab.spread, args.lab.seed);
    config.optimizer =
        OptimizerConfig { kind: args.optimizer.parse::<OptimizerKind>()?, lr: args.lr, ..Default::default() };
    config.validate()?;
    if args.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    let ctx = GpuContext::new_blocking()?;
    let layout = ParamLayout::new(&model);
    let mut lab = match &args.init {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("--init {}: {e}", path.display()))?;
            let weights = from_safetensors(&layout, &bytes).map_err(|e| format!("--init {}: {e}", path.display()))?;
            Lab::<GpuRun>::with_weights(&ctx, config.clone(), corpus, &weights)?
        }
        None => Lab::<GpuRun>::new(&ctx, config.clone(), corpus)?,
    };
    eprintln!(
        "gradlab sweep: {} ({} parameters) on {}; corpus {}; batch {} x {} positions, spread {}; {} runs, {} steps",
        args.lab.preset,
        layout.num_params,
        ctx.adapter,
        corpus_name,
        config.batch,
        config.seq_len,
        config.spread,
        lab.specs().len(),
        args.steps
    );
    let bar = indicatif::ProgressBar::new(args.steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mut metrics: Vec<RunMetrics> = Vec::new();
    let mut validation_rows = String::from("step,run,strategy,micro_batch,validation_loss\n");
    let mut record_validation = |lab: &mut Lab<GpuRun>, step: u64| -> Result<Vec<f64>, AnyError> {
        let losses = block_on(lab.validation_loss(32))?;
        for (i, (spec, loss)) in lab.specs().iter().zip(&losses).enumerate() {
            validation_rows += &format!("{step},{i},{},{},{loss}\n", spec.strategy.name(), spec.micro_batch);
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
            bar.set_message(format!("full-batch loss {:.3}", m.true_loss));
        }
        metrics.extend(fresh);
        bar.inc(1);
    }
    metrics.extend(block_on(lab.flush())?);
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let tokens: usize = metrics.iter().filter(|m| m.run == 0).map(|m| m.tokens).sum();
    let validation = record_validation(&mut lab, args.steps)?;

    let specs: Vec<RunSpec> = lab.specs().to_vec();
    let tail = (args.steps as usize / 10).max(1);
    let mut rows = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let run: Vec<&RunMetrics> = metrics.iter().filter(|m| m.run == i).collect();
        let last = &run[run.len() - tail.min(run.len())..];
        let mean = |xs: &[&RunMetrics], f: fn(&RunMetrics) -> f64| {
            xs.iter().map(|m| f(m)).sum::<f64>() / xs.len().max(1) as f64
        };
        rows.push(SweepRow {
            strategy: spec.strategy,
            micro_batch: spec.micro_batch,
            micro_batches: config.batch / spec.micro_batch,
            final_loss: mean(last, |m| m.logged_loss),
            mean_loss: mean(&run, |m| m.logged_loss),
            gap_to_full: 0.0,
            final_true_loss: mean(last, |m| m.true_loss),
            weight_distance: run.last().map(|m| m.weight_distance).unwrap_or(0.0),
            validation_loss: validation[i],
        });
    }
    let full_final = rows[0].final_loss;
    for r in &mut rows {
        r.gap_to_full = r.final_loss - full_final;
    }

    let json = serde_json::json!({ "config": config, "adapter": ctx.adapter, "corpus": corpus_name, "steps": args.steps, "rows": rows });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_table(&rows);
    }
    eprintln!(
        "gradlab sweep: {} lab steps in {:.1}s ({:.2} steps/s; {:.0} tokens/s per run, {:.0} across all runs)",
        args.steps,
        secs,
        args.steps as f64 / secs,
        tokens as f64 / secs,
        tokens as f64 * specs.len() as f64 / secs
    );

    let mut csv = String::from("strategy,micro_batch,micro_batches,final_loss,mean_loss,gap_to_full,final_true_loss,weight_distance,validation_loss\n");
    for r in &rows {
        csv += &format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.strategy.name(),
            r.micro_batch,
            r.micro_batches,
            r.final_loss,
            r.mean_loss,
            r.gap_to_full,
            r.final_true_loss,
            r.weight_distance,
            r.validation_loss
        );
    }
    write(&args.out.join("sweep.csv"), csv.as_bytes())?;
    write(&args.out.join("sweep.json"), serde_json::to_string_pretty(&json)?.as_bytes())?;
    write(&args.out.join("validation.csv"), validation_rows.as_bytes())?;
    let mut curves = String::from(
        "step,run,strategy,micro_batch,logged_loss,true_loss,weight_distance,grad_norm,tokens_per_second\n",
    );
    for m in &metrics {
        curves += &format!(
            "{},{},{},{},{},{},{},{},{}\n",
            m.step,
            m.run,
            m.strategy.name(),
            m.micro_batch,
            m.logged_loss,
            m.true_loss,
            m.weight_distance,
            m.grad_norm,
            m.tokens_per_second
        );
    }
    write(&args.out.join("curves.csv"), curves.as_bytes())?;
    if args.save_weights {
        for (i, spec) in specs.iter().enumerate() {
            let w = block_on(lab.weights(i))?;
            let name = format!("weights_{}_b{}.safetensors", spec.strategy.name(), spec.micro_batch);
            let meta = BTreeMap::from([
                ("strategy".to_string(), spec.strategy.name().to_string()),
                ("micro_batch".to_string(), spec.micro_batch.to_string()),
            ]);
            write(&args.out.join(name), &to_safetensors(&layout, &w, Some(meta.into_iter().collect()))?)?;
        }
    }
    eprintln!("gradlab sweep: wrote sweep.csv, sweep.json, curves.csv, validation.csv to {}", args.out.display());
    Ok(())
}

fn print_table(rows: &[SweepRow]) {
    println!(
        "{:<10} {:>3} {:>3} {:>11} {:>10} {:>12} {:>10} {:>12} {:>9}",
        "strategy", "b", "G", "final loss", "mean loss", "gap to full", "true loss", "‖w − w_full‖", "val loss"
    );
    for r in rows {
        println!(
            "{:<10} {:>3} {:>3} {:>11.4} {:>10.4} {:>+12.2e} {:>10.4} {:>12.3e} {:>9.4}",
            r.strategy.name(),
            r.micro_batch,
            r.micro_batches,
            r.final_loss,
            r.mean_loss,
            r.gap_to_full,
            r.final_true_loss,
            r.weight_distance,
            r.validation_loss
        );
    }
}
