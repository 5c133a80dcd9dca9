//! A training run on the CPU reference: the fallback when there is no WebGPU.
//! Same steps, same optimizers and clipping as `train::Run`, in f64.

use super::kernels::{adamw_update, grad_norm, sgd_update};
use super::model::CpuModel;
use crate::model::{ConfigError, ParamLayout};
use crate::optim::OptimizerKind;
use crate::train::{MicroBatch, RunConfig, StepStats};

pub struct CpuRun {
    pub config: RunConfig,
    pub model: CpuModel,
    state1: Vec<f64>,
    state2: Vec<f64>,
    step: u64,
}

impl CpuRun {
    pub fn new(config: RunConfig, init_params: &[f32]) -> Result<Self, ConfigError> {
        config.validate()?;
        let layout = ParamLayout::new(&config.model);
        layout.check_len(init_params.len())?;
        let n = layout.total;
        Ok(Self {
            config,
            model: CpuModel::new(layout, init_params),
            state1: vec![0.0; n],
            state2: vec![0.0; n],
            step: 0,
        })
    }

    /// One optimizer step; `batch[i]`'s dlogits are scaled by `scales[i]`.
    pub fn step(&mut self, batch: &[MicroBatch], scales: &[f32]) -> Result<StepStats, ConfigError> {
        let (b, t) = (self.config.micro_batch, self.config.seq_len);
        if batch.len() != self.config.grad_accum || scales.len() != batch.len() {
            return Err(ConfigError::Invalid {
                field: "batch",
                reason: format!("this run takes {} micro-batches", self.config.grad_accum),
            });
        }
        let v = self.config.model.vocab_size as u32;
        for mb in batch {
            if mb.inputs.len() != b * t || mb.targets.len() != b * t || mb.inputs.iter().any(|&x| x >= v) {
                return Err(ConfigError::Invalid {
                    field: "batch",
                    reason: "a micro-batch has the wrong size or a token outside the vocabulary".into(),
                });
            }
        }
        self.model.zero_grad();
        let mut loss_sums = Vec::new();
        for (mb, &scale) in batch.iter().zip(scales) {
            loss_sums.push(self.model.forward(&mb.inputs, &mb.targets, b, t).iter().sum::<f64>() as f32);
            self.model.backward(scale as f64);
        }
        let norm = grad_norm(&self.model.grads);
        self.step += 1;
        let opt = &self.config.optimizer;
        let grad_scale =
            if opt.max_grad_norm > 0.0 && norm > opt.max_grad_norm { opt.max_grad_norm / norm } else { 1.0 };
        let [lr, _, _] = opt.step_scalars(self.step);
        let decay_end = self.model.layout.decay_end;
        let wd = opt.effective_weight_decay();
        let m = &mut self.model;
        match opt.kind {
            OptimizerKind::Sgd | OptimizerKind::Momentum => {
                let momentum = if opt.kind == OptimizerKind::Sgd { 0.0 } else { opt.momentum };
                sgd_update(&mut m.params, &m.grads, &mut self.state1, lr as f64, momentum, wd, decay_end, grad_scale)
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => adamw_update(
                &mut m.params,
                &m.grads,
                &mut self.state1,
                &mut self.state2,
                lr as f64,
                opt.beta1,
                opt.beta2,
                opt.eps,
                wd,
                self.step.min(u32::MAX as u64) as u32,
                decay_end,
                grad_scale,
            ),
        }
        Ok(StepStats {
            step: self.step,
            loss_sums,
            tokens: batch.iter().map(MicroBatch::tokens).collect(),
            grad_norm: norm as f32,
            weight_distance: 0.0,
        })
    }

    pub fn params_f32(&self) -> Vec<f32> {
        self.model.params.iter().map(|&x| x as f32).collect()
    }
}
