use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::lab_cmds as gradlab_sweep;
use gradlab::gpu::GpuContext;
use gradlab::model::{ModelConfig, ParamLayout};
use gradlab::optim::{OptimizerConfig, OptimizerKind};
use gradlab::rng::Rng;
use gradlab::train::{Run, RunConfig};

#[derive(Parser)]
#[command(name = "gradlab", version, about = "Watch a tiny GPT learn on your GPU (WGSL kernels through wgpu).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a text and print the loss of every step.
    Train(TrainArgs),
    /// The reference experiment: full batch vs naive vs corrected accumulation
    /// at micro-batch 1, 2, 4, 8, 16 (effective batch 16), in lockstep.
    Sweep(SweepArgs),
    /// Write one batch, the weights and the GPU gradients of every strategy to DIR.
    ExportGrads(ExportArgs),
    /// Compare every GPU kernel and a whole model step with the CPU reference.
    Check {
        /// Seed for the random inputs (default: time-based).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Model size: nano, micro or small.
    #[arg(long, default_value = "nano")]
    preset: String,
    /// Optimizer steps.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// Sequences per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// sgd, momentum, adam or adamw.
    #[arg(long, default_value = "adamw")]
    optimizer: String,
    /// Global gradient-norm clipping threshold; 0 turns clipping off.
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Seeds the weights and the batches.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on this UTF-8 file instead of the built-in text.
    #[arg(long)]
    text: Option<std::path::PathBuf>,
    /// Print one JSON object per step instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct LabArgs {
    /// Model size: nano, micro or small.
    #[arg(long, default_value = "nano")]
    pub preset: String,
    /// Effective batch B (sequences per optimizer step).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Sequence-length spread: 0 = all full length (no padding), 1 = widely varying.
    #[arg(long, default_value_t = 1.0)]
    pub spread: f64,
    /// Seeds the weights and every batch.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Train on this UTF-8 file instead of the bundled corpus.
    #[arg(long)]
    pub text: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
pub struct SweepArgs {
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

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Output directory (created if missing).
    pub dir: std::path::PathBuf,
    #[command(flatten)]
    pub lab: LabArgs,
    /// Sequences per micro-batch for the naive and corrected gradients.
    #[arg(long, default_value_t = 4)]
    pub micro_batch: usize,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train(args),
        Command::Sweep(args) => gradlab_sweep::sweep(args),
        Command::ExportGrads(args) => gradlab_sweep::export_grads(args),
        Command::Check { seed } => check(seed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn train(args: TrainArgs) -> Result<(), Box<dyn std::error::Error>> {
    let model = ModelConfig::preset(&args.preset)?;
    let optimizer = OptimizerConfig {
        kind: args.optimizer.parse::<OptimizerKind>()?,
        lr: args.lr,
        max_grad_norm: args.max_grad_norm,
        ..Default::default()
    };
    if args.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    let text = match &args.text {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("--text {}: {e}", path.display()))?;
            String::from_utf8(bytes).map_err(|e| format!("--text {}: not valid UTF-8 ({e})", path.display()))?
        }
        None => gradlab::data::DEMO_TEXT.to_string(),
    };
    let tokens = gradlab::data::encode(&text);
    let config = RunConfig { model, micro_batch: args.batch, grad_accum: 1, seq_len: model.block_size, optimizer };
    config.validate()?;
    if tokens.len() <= model.block_size {
        return Err(
            format!("the text has {} bytes; this model needs more than {}", tokens.len(), model.block_size).into()
        );
    }
    let ctx = GpuContext::new_blocking()?;
    let layout = ParamLayout::new(&model);
    eprintln!(
        "gradlab: training {} ({} parameters) on {} with {:?}, lr {}, batch {}x{}",
        args.preset, layout.num_params, ctx.adapter, optimizer.kind, optimizer.lr, args.batch, model.block_size
    );
    let mut run = Run::new(&ctx, config, &layout.init(args.seed))?;
    let mut rng = Rng::new(args.seed ^ 0xBA7C4);
    let started = std::time::Instant::now();
    let print = |s: &gradlab::train::StepStats| {
        if args.json {
            println!(
                "{}",
                serde_json::json!({"step": s.step, "loss": s.mean_loss(), "grad_norm": s.grad_norm, "adapter": ctx.adapter.to_string()})
            );
        } else {
            println!("step {:>5}  loss {:.4}  grad norm {:.3}", s.step, s.mean_loss(), s.grad_norm);
        }
    };
    let mut last = None;
    for _ in 0..args.steps {
        let batch = gradlab::data::random_windows(&tokens, args.batch, model.block_size, &mut rng)?;
        let scale = 1.0 / batch.tokens() as f32;
        pollster::block_on(run.step(&ctx, &[batch], &[scale]))?;
        for s in pollster::block_on(run.poll(&ctx))? {
            print(&s);
            last = Some(s);
        }
    }
    for s in pollster::block_on(run.flush(&ctx))? {
        print(&s);
        last = Some(s);
    }
    let secs = started.elapsed().as_secs_f64();
    let tokens_seen = args.steps as f64 * (args.batch * model.block_size) as f64;
    eprintln!(
        "gradlab: {} steps in {:.1}s ({:.1} steps/s, {:.0} tokens/s); final loss {:.4} (ln V = {:.4})",
        args.steps,
        secs,
        args.steps as f64 / secs,
        tokens_seen / secs,
        last.map(|s| s.mean_loss()).unwrap_or(f64::NAN),
        (model.vocab_size as f64).ln()
    );
    Ok(())
}

fn check(seed: Option<u64>) -> Result<(), Box<dyn std::error::Error>> {
    use gradlab::checks;
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1)
    });
    let ctx = GpuContext::new_blocking()?;
    println!("adapter: {}  seed: {seed}", ctx.adapter);
    let case = checks::model_case(seed, ModelConfig::nano(), 2, 64);
    use pollster::block_on as b;
    let mut all = Vec::new();
    all.extend(b(checks::matmul(&ctx, seed, 130, 67, 191))?);
    all.extend(b(checks::crossentropy(&ctx, seed, 77, 257, checks::LogitRows::Random))?);
    all.extend(b(checks::crossentropy(&ctx, seed, 33, 65, checks::LogitRows::Confident))?);
    all.extend(b(checks::optimizer(&ctx, seed, checks::UpdateKind::AdamW, 10_007))?);
    all.extend(b(checks::optimizer(&ctx, seed, checks::UpdateKind::Sgd, 10_007))?);
    all.extend(b(checks::encoder(&ctx, seed, 3, 17, 19, 11))?);
    all.extend(b(checks::layernorm(&ctx, seed, 131, 67))?);
    all.extend(b(checks::attention(&ctx, seed, 3, 23, 12, 3))?);
    all.extend(b(checks::elementwise(&ctx, seed, 1001))?);
    all.extend(b(checks::reductions(&ctx, seed, 100_003))?);
    let kernels = all.len();
    all.extend(b(checks::model_gradients(&ctx, &case))?);
    let mut failed = 0;
    for (i, c) in all.iter().enumerate() {
        let tol = if i < kernels { 1e-4 } else { 1e-3 };
        let ok = c.rel_error < tol;
        failed += usize::from(!ok);
        println!("{} {c}", if ok { "ok  " } else { "FAIL" });
    }
    println!("{} passed, {} failed", all.len() - failed, failed);
    if failed > 0 {
        return Err(format!("{failed} comparisons above tolerance").into());
    }
    Ok(())
}
