//! `train`: one model on the GPU on a text, the loss of every step — from a
//! fresh init or `--init` weights, every weight or (`--lora`) adapters only.
//!
//! Under LoRA, `--save-adapters FILE` writes the adapters at the end with the
//! steps behind them, and `--adapters FILE` resumes from such a file: the
//! adapters are the file's, the steps are numbered on from its `steps` and
//! the batches go on where that run's stopped (the batch stream of `--seed`
//! with the file's steps drawn and dropped). The file holds no optimizer
//! state, so the optimizer starts afresh: with `sgd` (no state) and the same
//! `--seed`, base, text and batch, N steps then M from the file are the N + M
//! steps of one run bit for bit; with momentum or Adam the moments restart
//! at zero (a lab's state file, on the page, keeps them).

use gradlab::accum::{scales, Strategy};
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::model::{AdapterLayout, ModelConfig, ParamLayout};
use gradlab::optim::{OptimizerConfig, OptimizerKind};
use gradlab::rng::Rng;
use gradlab::train::{RunConfig, StepStats, StepWork, Trainer};
use pollster::block_on;

use crate::common::{adapters_file, read_weights, write, AnyError, LoraArgs};

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
    /// Under --lora, write the adapters to this file at the end
    /// (safetensors, PEFT's names; --adapters resumes from it).
    #[arg(long, value_name = "FILE", requires = "rank")]
    save_adapters: Option<std::path::PathBuf>,
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
    let start = args.lora.start(&model, lora)?;
    let resumed = start.as_ref().map_or(0, |s| s.steps);
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
    let mut from = args.init.as_ref().map_or("a fresh init".to_string(), |p| p.display().to_string());
    if let Some(path) = &args.lora.adapters {
        from = format!("{from} with the adapters of {} (after {resumed} steps)", path.display());
    }
    eprintln!(
        "gradlab: training {} ({what}) from {from} on {} with {:?}, lr {}, batch {}x{}",
        args.preset, ctx.adapter, optimizer.kind, optimizer.lr, args.batch, model.block_size
    );
    let mut run = GpuRun::new(&ctx, config, &weights)?;
    if let Some(start) = &start {
        let mut state = block_on(run.state())?;
        state.adapters = Some(start.values.iter().map(|&x| f64::from(x)).collect());
        run.set_state(&state)?;
    }
    let mut rng = Rng::new(args.seed ^ 0xBA7C4);
    // the batches of the steps the adapters have already taken
    for _ in 0..resumed {
        gradlab::data::random_windows(&tokens, args.batch, model.block_size, &mut rng)?;
    }
    let started = std::time::Instant::now();
    let print = |s: &StepStats| {
        let step = resumed + s.step;
        if args.json {
            println!(
                "{}",
                serde_json::json!({"step": step, "loss": s.mean_loss(), "grad_norm": s.grad_norm, "adapter": ctx.adapter.to_string()})
            );
        } else {
            println!("step {:>5}  loss {:.4}  grad norm {:.3}", step, s.mean_loss(), s.grad_norm);
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
    if let (Some(path), Some(lora)) = (&args.save_adapters, lora) {
        let values: Vec<f32> = block_on(run.state())?.adapters.unwrap_or_default().iter().map(|&x| x as f32).collect();
        let adapters = AdapterLayout::new(&layout, lora)?;
        let meta = [("seed", args.seed.to_string())];
        write(path, &adapters_file(&adapters, &values, resumed + args.steps, &meta)?)?;
        eprintln!("gradlab: wrote the adapters after step {} to {}", resumed + args.steps, path.display());
    }
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
