//! `export-grads`: one batch, the weights, and the GPU gradient of every
//! strategy on it, as files an independent implementation can check
//! (tests/independent/ does, in float64 JavaScript).

use gradlab::checkpoint::to_safetensors;
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::lab::{Lab, LabConfig};
use gradlab::model::ParamLayout;
use pollster::block_on;

use crate::common::{write, AnyError, LabArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Output directory (created if missing).
    pub dir: std::path::PathBuf,
    #[command(flatten)]
    pub lab: LabArgs,
    /// Sequences per micro-batch for the naive and corrected gradients.
    #[arg(long, default_value_t = 4)]
    pub micro_batch: usize,
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
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let ctx = GpuContext::new_blocking()?;
    let layout = ParamLayout::new(&model);
    let mut lab = Lab::<GpuRun>::new(&ctx, config.clone(), corpus)?;
    let batch = lab.draw_batch();
    let grads = block_on(lab.gradients(&batch))?;
    let weights = block_on(lab.weights(0))?;
    let dir = &args.dir;
    write(&dir.join("config.json"), serde_json::to_string_pretty(&model)?.as_bytes())?;
    write(&dir.join("model.safetensors"), &to_safetensors(&layout, &weights, None)?)?;
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
        write(&dir.join(name), &to_safetensors(&layout, &g.grads, None)?)?;
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
    Ok(())
}
