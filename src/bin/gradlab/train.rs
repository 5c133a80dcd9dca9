//! `train`: one model on the GPU on a text, the loss of every step — from a
//! fresh init or `--init` weights, every weight or (`--lora`) adapters only.

use gradlab::accum::{scales, Strategy};
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::model::{AdapterLayout, ModelConfig, ParamLayout};
use gradlab::optim::{OptimizerConfig, OptimizerKind};
use gradlab::rng::Rng;
use gradlab::train::{RunConfig, StepStats, StepWork, Trainer};
use pollster::block_on;

use crate::common::{read_weights, AnyError, LoraArgs};

#[derive(clap::Args)]
pub struct Args {
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
    /// Start from these weights (safetensors, ours or nanoGPT's names)
    /// instead of a fresh init.
    #[arg(long)]
    init: Option<std::path::PathBuf>,
    #[command(flatten)]
    lora: LoraArgs,
}

pub fn run(args: Args) -> Result<(), AnyError> {
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
    let lora = args.lora.config(args.seed)?;
    let config =
        RunConfig { model, micro_batch: args.batch, grad_accum: 1, seq_len: model.block_size, optimizer, lora };
    config.validate()?;
    if tokens.len() <= model.block_size {
        return Err(
            format!("the text has {} bytes; this model needs more than {}", tokens.len(), model.block_size).into()
        );
    }
    let ctx = GpuContext::new_blocking()?;
    let layout = ParamLayout::new(&model);
    let weights = match &args.init {
        Some(path) => read_weights(path, &model)?,
        None => layout.init(args.seed),
    };
    let what = match lora {
        Some(l) => format!(
            "LoRA r={} α={} adapters ({} parameters; the {} of the model frozen)",
            l.rank,
            l.alpha,
            AdapterLayout::new(&layout, l)?.num_params,
            layout.num_params
        ),
        None => format!("{} parameters", layout.num_params),
    };
    let from = args.init.as_ref().map_or("a fresh init".to_string(), |p| p.display().to_string());
    eprintln!(
        "gradlab: training {} ({what}) from {from} on {} with {:?}, lr {}, batch {}x{}",
        args.preset, ctx.adapter, optimizer.kind, optimizer.lr, args.batch, model.block_size
    );
    let mut run = GpuRun::new(&ctx, config, &weights)?;
    let mut rng = Rng::new(args.seed ^ 0xBA7C4);
    let started = std::time::Instant::now();
    let print = |s: &StepStats| {
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
        let scales = scales(Strategy::FullBatch, &[batch.tokens()], 1);
        block_on(run.step(StepWork { micro_batches: &[batch], scales: &scales }))?;
        for s in block_on(run.poll(false))? {
            print(&s);
            last = Some(s);
        }
    }
    for s in block_on(run.poll(true))? {
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
