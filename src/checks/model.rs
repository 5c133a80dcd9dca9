//! The whole-model family: per-token losses and every parameter's gradient,
//! GPU against the f64 CPU reference, and the model case (`model_case`) the
//! LoRA step's family and the f32 CPU backend's tests use too.

use super::compare::{compare, Comparison};
use super::{Case, Check, Family, Running};
use crate::accum::{self, Strategy};
use crate::cpu;
use crate::gpu::{GpuContext, GpuRun};
use crate::model::{ModelConfig, ParamLayout};
use crate::rng::Rng;
use crate::train::{MicroBatch, RunConfig, StepError, StepWork, Trainer};

pub const FAMILY: Family = Family { name: "model", checks };

/// Two layers whose sizes fit no tile: a vocabulary of 67, 3 heads of 7
/// channels, a context of 19.
pub const RAGGED: ModelConfig = ModelConfig { vocab_size: 67, block_size: 19, n_layer: 2, n_head: 3, n_embd: 21 };

/// `config` on a micro-batch of b sequences of t positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    pub config: ModelConfig,
    pub b: usize,
    pub t: usize,
}

impl Case for Model {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { model_gradients(ctx, &model_case(seed, self.config, self.b, self.t)).await })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    vec![
        family.model(Model { config: RAGGED, b: 3, t: 17 }, true),
        family.model(Model { config: ModelConfig::nano(), b: 2, t: 64 }, false),
    ]
}

/// A model, weights and a ragged micro-batch for whole-model checks.
pub struct ModelCase {
    pub config: ModelConfig,
    pub params: Vec<f32>,
    pub batch: MicroBatch,
    pub b: usize,
    pub t: usize,
}

/// A small model with perturbed GPT-2 init (so biases and gains matter) and a
/// micro-batch of right-padded sequences of different lengths.
pub fn model_case(seed: u64, config: ModelConfig, b: usize, t: usize) -> ModelCase {
    let layout = ParamLayout::new(&config);
    let mut rng = Rng::new(seed);
    let mut params = layout.init(seed);
    for tv in &layout.tensors {
        for x in &mut params[tv.offset..tv.offset + tv.len] {
            *x += (rng.uniform() as f32 - 0.5) * 0.1;
        }
    }
    let sequences: Vec<Vec<u32>> = (0..b)
        .map(|i| {
            let len = if i == 0 { t + 1 } else { 2 + rng.below(t) };
            (0..len).map(|_| rng.below(config.vocab_size) as u32).collect()
        })
        .collect();
    let batch = MicroBatch::from_sequences(&sequences, t).unwrap_or_else(|e| unreachable!("{e}"));
    ModelCase { config, params, batch, b, t }
}

/// Whole model: per-token losses and every parameter's gradient, GPU against
/// the CPU reference, for one micro-batch with dlogits scale 1/N.
pub async fn model_gradients(ctx: &GpuContext, case: &ModelCase) -> Result<Vec<Comparison>, StepError> {
    let layout = ParamLayout::new(&case.config);
    let run_config = RunConfig {
        model: case.config,
        micro_batch: case.b,
        grad_accum: 1,
        seq_len: case.t,
        optimizer: Default::default(),
        lora: None,
    };
    let mut run = GpuRun::new(ctx, run_config, &case.params)?;
    let scales = accum::scales(Strategy::FullBatch, &[case.batch.tokens()], 1);
    let work = StepWork { micro_batches: std::slice::from_ref(&case.batch), scales: &scales };
    let (grads, loss_sums) = run.gradients(work).await?;

    let mut reference = cpu::CpuModel::new(layout.clone(), &case.params);
    let losses = reference.forward(&case.batch.inputs, &case.batch.targets, case.b, case.t);
    reference.backward(scales[0] as f64);
    let mut out = vec![compare("model loss sum", &loss_sums, &[losses.iter().sum()])];
    for tv in &layout.tensors {
        let r = tv.offset..tv.offset + tv.len;
        out.push(compare(&format!("grad {}", tv.name), &grads[r.clone()], &reference.grads[r]));
    }
    Ok(out)
}
