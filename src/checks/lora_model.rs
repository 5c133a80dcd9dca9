//! The LoRA step's family: a whole LoRA step and the adapters' gradient, GPU
//! (adapters merged into the weights) against the f64 CPU reference
//! (adapters applied unmerged).

use super::compare::{compare, f64s, Comparison};
use super::model::{model_case, ModelCase, RAGGED};
use super::{Case, Check, Family, Running};
use crate::accum::{self, Strategy};
use crate::cpu;
use crate::gpu::{GpuContext, GpuRun};
use crate::model::{AdapterLayout, LoraConfig, ModelConfig, ParamLayout};
use crate::optim::{OptimizerConfig, OptimizerKind};
use crate::train::{RunConfig, StepError, StepWork, Trainer};

pub const FAMILY: Family = Family { name: "lora_model", checks };

/// `lora` on `config`, a micro-batch of b sequences of t positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraModel {
    pub config: ModelConfig,
    pub b: usize,
    pub t: usize,
    pub lora: LoraConfig,
}

impl Case for LoraModel {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(
            async move { lora_model_gradients(ctx, &model_case(seed, self.config, self.b, self.t), self.lora).await },
        )
    }
}

fn checks(family: &Family) -> Vec<Check> {
    let two_layers = LoraConfig { rank: 5, alpha: 7.0, targets: 0b1101, seed: 3 };
    vec![
        family.model(LoraModel { config: RAGGED, b: 3, t: 17, lora: two_layers }, true),
        family.model(LoraModel { config: ModelConfig::nano(), b: 2, t: 64, lora: LoraConfig::all_layers(8, 1) }, false),
    ]
}

/// A whole LoRA step and gradient, GPU against the CPU reference: one SGD
/// step from fresh adapters (B = 0, so only B moves), then the adapters'
/// gradient at the moved adapters, where A's is no longer zero. The GPU
/// merges the adapters into the weights; the CPU applies them unmerged.
pub async fn lora_model_gradients(
    ctx: &GpuContext,
    case: &ModelCase,
    lora: LoraConfig,
) -> Result<Vec<Comparison>, StepError> {
    let optimizer = OptimizerConfig { kind: OptimizerKind::Sgd, lr: 0.5, ..Default::default() };
    let run_config = RunConfig {
        model: case.config,
        micro_batch: case.b,
        grad_accum: 1,
        seq_len: case.t,
        optimizer,
        lora: Some(lora),
    };
    let mut gpu = GpuRun::new(ctx, run_config, &case.params)?;
    let mut cpu = cpu::ReferenceRun::new(&(), run_config, &case.params)?;
    let scales = accum::scales(Strategy::FullBatch, &[case.batch.tokens()], 1);
    let work = StepWork { micro_batches: std::slice::from_ref(&case.batch), scales: &scales };
    gpu.step(work).await?;
    cpu.step(work).await?;
    let (gpu_grads, gpu_sums) = gpu.gradients(work).await?;
    let (cpu_grads, cpu_sums) = cpu.gradients(work).await?;
    let (gpu_weights, cpu_weights) = (gpu.params().await?, cpu.params().await?);
    let adapters = AdapterLayout::new(&ParamLayout::new(&case.config), lora)?;
    let mut out = vec![
        compare("lora loss sum after a step", &gpu_sums, &f64s(&cpu_sums)),
        compare("merged weights after a step", &gpu_weights, &f64s(&cpu_weights)),
    ];
    for tv in adapters.tensors() {
        let r = tv.offset..tv.offset + tv.len;
        out.push(compare(&format!("grad {}", tv.name), &gpu_grads[r.clone()], &f64s(&cpu_grads[r])));
    }
    Ok(out)
}
