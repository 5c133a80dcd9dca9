//! `export-grads`: one batch, the weights, and the GPU gradient of every
//! strategy on it, as files an independent implementation can check
//! (tests/independent/ does, in float64 JavaScript). With `--lora` the
//! gradients are the adapters' (`h.{i}.<module>.lora_A` / `lora_B`), and the
//! adapters' starting values are written beside the frozen base: their seeded
//! init (B = 0, so every gradient of A is zero), or with `--adapters FILE`
//! the file's (B ≠ 0 after training, so A's gradients are checked too).

use gradlab::checkpoint::{adapters_to_safetensors, to_safetensors};
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::lab::{Lab, LabConfig};
use gradlab::model::{AdapterLayout, ParamLayout};
use pollster::block_on;

use crate::common::{adapters_file, read_weights, start_lab_adapters, write, AnyError, LabArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Output directory (created if missing).
    pub dir: std::path::PathBuf,
    #[command(flatten)]
    pub lab: LabArgs,
    /// Sequences per micro-batch for the naive and corrected gradients.
    #[arg(long, default_value_t = 4)]
    pub micro_batch: usize,
    /// Start from these weights (safetensors) instead of a fresh init.
    #[arg(long)]
    pub init: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> Result<(), AnyError> {
    let model = args.lab.model()?;
    let (corpus, _) = args.lab.corpus()?;
    let config = args.lab.apply(LabConfig::three_way(
        model,
        args.lab.batch,
        args.micro_batch,
        args.lab.spread,
        args.lab.seed,
    ))?;
    let start = args.lab.lora.start(&model, config.lora)?;
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let ctx = GpuContext::new_blocking()?;
    let layout = ParamLayout::new(&model);
    let init = match &args.init {
        Some(path) => read_weights(path, &model)?,
        None => layout.init(config.seed),
    };
    let mut lab = Lab::with_weights::<GpuRun>(&ctx, config.clone(), corpus, &init)?;
    let adapters = config.lora.map(|lora| AdapterLayout::new(&layout, lora)).transpose()?;
    if let Some(start) = &start {
        start_lab_adapters(&mut lab, &start.values)?;
    }
    // the gradient's file: the model's tensors, or under LoRA the adapters'
    let grads_file = |grads: &[f32]| match &adapters {
        Some(a) => adapters_to_safetensors(a, grads, None),
        None => to_safetensors(&layout, grads, None),
    };
    let batch = lab.draw_batch();
    let grads = block_on(lab.gradients(&batch))?;
    let dir = &args.dir;
    write(&dir.join("config.json"), serde_json::to_string_pretty(&model)?.as_bytes())?;
    match &adapters {
        Some(a) => {
            // the frozen base (the merged weights differ once B is not zero)
            // and the adapters the gradients were taken at
            write(&dir.join("model.safetensors"), &to_safetensors(&layout, &init, None)?)?;
            let (values, steps) = start.as_ref().map_or_else(|| (a.init(), 0), |s| (s.values.clone(), s.steps));
            write(&dir.join("adapters.safetensors"), &adapters_file(a, &values, steps, &[])?)?;
        }
        None => {
            let weights = block_on(lab.weights(0))?;
            write(&dir.join("model.safetensors"), &to_safetensors(&layout, &weights, None)?)?;
        }
    }
    let batch_json = serde_json::json!({
        "sequences": batch.sequences,
        "micro_batch": args.micro_batch,
        "prompt_lengths": batch.prompt_lengths,
        "ranks": config.ranks,
    });
    write(&dir.join("batch.json"), serde_json::to_string(&batch_json)?.as_bytes())?;
    let mut loss = serde_json::Map::new();
    for (spec, g) in lab.specs().iter().zip(&grads) {
        loss.insert(spec.strategy.name().to_string(), serde_json::json!(g.logged_loss));
        let name = format!("grads_{}.safetensors", spec.strategy.name());
        write(&dir.join(name), &grads_file(&g.grads)?)?;
    }
    write(&dir.join("report.json"), serde_json::to_string_pretty(&serde_json::json!({ "loss": loss }))?.as_bytes())?;
    eprintln!(
        "gradlab export-grads: batch of {} sequences (lengths {:?}, prompts {:?}), micro-batch {}, {} rank(s), on {}; wrote {}",
        batch.len(),
        batch.sequences.iter().map(Vec::len).collect::<Vec<_>>(),
        batch.prompt_lengths,
        args.micro_batch,
        config.ranks,
        ctx.adapter,
        dir.display()
    );
    if let Some(path) = &args.lab.lora.adapters {
        eprintln!("gradlab export-grads: the adapters started from {}", path.display());
    }
    Ok(())
}
