//! `pretrain`: one model trained on packed windows of a corpus (pretraining:
//! every step sees full windows, so accumulation has nothing to get wrong),
//! written as safetensors — the base a LoRA lab adapts. Reproducible: the
//! same seed, steps and backend give the same file (the f64 reference bit for
//! bit anywhere; the GPU on the same adapter).

use std::collections::HashMap;

use gradlab::checkpoint::to_safetensors;
use gradlab::cpu::{FastCpuRun, ReferenceRun};
use gradlab::data::Packing;
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::lab::{Backend, Lab, LabConfig};
use gradlab::model::ParamLayout;
use gradlab::optim::OptimizerConfig;
use gradlab::train::Trainer;
use pollster::block_on;

use crate::common::{write, AnyError, LabArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Optimizer steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// gpu (WGSL kernels, f32), cpu (gradlab's f32 CPU backend) or reference
    /// (the f64 reference, reproducible anywhere: the shipped base's).
    #[arg(long, default_value = "reference")]
    pub backend: String,
    /// Where to write the weights.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

pub fn run(args: Args) -> Result<(), AnyError> {
    if args.lab.lora.rank.is_some() {
        return Err("--lora: pretraining trains every weight; LoRA adapts a pretrained model".into());
    }
    let model = args.lab.model()?;
    let (corpus, corpus_name) = args.lab.corpus()?;
    let mut config = LabConfig { runs: Vec::new(), ..LabConfig::sweep(model, args.lab.batch, 1.0, args.lab.seed) };
    config.optimizer = OptimizerConfig { lr: args.lr, ..Default::default() };
    let mut config = args.lab.apply(config)?;
    config.packing = Packing::Packed;
    config.validate()?;
    let backend = crate::common::backend(&args.backend)?;
    let weights = match backend {
        Backend::Gpu => pretrain::<GpuRun>(&GpuContext::new_blocking()?, &config, corpus, &args)?,
        Backend::Cpu => pretrain::<FastCpuRun>(&(), &config, corpus, &args)?,
        Backend::Reference => pretrain::<ReferenceRun>(&(), &config, corpus, &args)?,
    };
    let metadata = HashMap::from([
        (
            "gradlab_command".to_string(),
            format!(
                "gradlab pretrain --preset {} --ctx {} --corpus {} --batch {} --steps {} --lr {} --seed {} --backend {}",
                args.lab.preset,
                model.block_size,
                args.lab.corpus,
                args.lab.batch,
                args.steps,
                args.lr,
                args.lab.seed,
                backend
            ),
        ),
        ("gradlab_config".to_string(), serde_json::to_string(&model)?),
        ("gradlab_corpus".to_string(), corpus_name),
    ]);
    let layout = ParamLayout::new(&model);
    write(&args.out, &to_safetensors(&layout, &weights, Some(metadata))?)?;
    eprintln!("gradlab pretrain: wrote {} ({} parameters)", args.out.display(), layout.num_params);
    Ok(())
}

fn pretrain<R: Trainer>(
    device: &R::Device,
    config: &LabConfig,
    corpus: std::sync::Arc<gradlab::data::Corpus>,
    args: &Args,
) -> Result<Vec<f32>, AnyError> {
    let mut lab = Lab::new::<R>(device, config.clone(), corpus)?;
    eprintln!(
        "gradlab pretrain: {} steps of {} packed windows of {} tokens on {}",
        args.steps,
        config.batch,
        config.seq_len + 1,
        lab.describe()
    );
    let started = std::time::Instant::now();
    let report_every = (args.steps / 20).max(1);
    let report = |metrics: Vec<gradlab::lab::RunMetrics>| {
        for m in metrics.iter().filter(|m| m.step % report_every == 0) {
            eprintln!("step {:>6}  loss {:.4}  ({:.0}s)", m.step, m.true_loss, started.elapsed().as_secs_f64());
        }
    };
    for _ in 0..args.steps {
        block_on(lab.step())?;
        report(block_on(lab.poll())?);
    }
    // the GPU hands the last steps' metrics out late
    report(block_on(lab.flush())?);
    let val = block_on(lab.validation_loss(128))?;
    eprintln!("gradlab pretrain: validation loss {:.4} on 128 held-out windows", val[0]);
    Ok(block_on(lab.weights(0))?)
}
