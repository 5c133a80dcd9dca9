//! Optimizers and learning-rate schedules: their settings, validation, and
//! the one mapping from an optimizer to what its update kernel reads — the
//! kernel and its constants (`UpdateRule`) and each step's numbers
//! (`StepScalars`) — that both backends consume.
//! The updates themselves are kernels (`shaders/optimizer.wgsl`) with CPU twins
//! (`cpu::kernels`); each backend only dispatches the kernel a rule names.
//!
//! Both update kernels keep two vectors beside the trainable values:
//! `moment1` and `moment2`, Adam's first and second moments (m and v). For
//! (momentum) SGD moment1 is the velocity and moment2 is unused.

use serde::{Deserialize, Serialize};

use crate::model::config::{check_range, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Plain (stochastic) gradient descent.
    Sgd,
    /// SGD with heavy-ball momentum.
    Momentum,
    /// Adam: AdamW with no weight decay.
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
}

impl std::str::FromStr for OptimizerKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "sgd" => Ok(Self::Sgd),
            "momentum" => Ok(Self::Momentum),
            "adam" => Ok(Self::Adam),
            "adamw" => Ok(Self::AdamW),
            _ => Err(ConfigError::Invalid {
                field: "optimizer",
                reason: format!("unknown optimizer {s:?}; choose sgd, momentum, adam or adamw"),
            }),
        }
    }
}

/// Written as `{"kind": "cosine", "warmup": 20, "total": 1000, "min_ratio":
/// 0.1}`: the kind and that kind's fields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", try_from = "ScheduleFields")]
pub enum Schedule {
    Constant,
    /// Linear warm-up from 0 over `warmup` steps, then constant.
    Warmup {
        warmup: u32,
    },
    /// Linear warm-up, then cosine decay to `min_ratio`·lr at step `total`.
    Cosine {
        warmup: u32,
        total: u32,
        min_ratio: f64,
    },
}

/// A schedule as read, before its kind is known. Read flat rather than
/// through serde's internally tagged enum, which buffers every field of the
/// object first and brought that buffering's code into the web module
/// (BENCHMARKS.md, the module's size).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFields {
    kind: String,
    warmup: Option<u32>,
    total: Option<u32>,
    min_ratio: Option<f64>,
}

impl TryFrom<ScheduleFields> for Schedule {
    type Error = String;
    fn try_from(f: ScheduleFields) -> Result<Self, String> {
        let needs = |value: Option<u32>, name: &str| value.ok_or(format!("a {} schedule needs `{name}`", f.kind));
        let (schedule, has) = match f.kind.as_str() {
            "constant" => (Schedule::Constant, &[][..]),
            "warmup" => (Schedule::Warmup { warmup: needs(f.warmup, "warmup")? }, &["warmup"][..]),
            "cosine" => (
                Schedule::Cosine {
                    warmup: needs(f.warmup, "warmup")?,
                    total: needs(f.total, "total")?,
                    min_ratio: f.min_ratio.ok_or("a cosine schedule needs `min_ratio`")?,
                },
                &["warmup", "total", "min_ratio"][..],
            ),
            other => return Err(format!("unknown schedule kind {other:?}; choose constant, warmup or cosine")),
        };
        let given =
            [("warmup", f.warmup.is_some()), ("total", f.total.is_some()), ("min_ratio", f.min_ratio.is_some())];
        match given.iter().find(|(name, set)| *set && !has.contains(name)) {
            Some((name, _)) => Err(format!("a {} schedule has no `{name}`", f.kind)),
            None => Ok(schedule),
        }
    }
}

impl Schedule {
    /// Multiplier of the base learning rate at 1-based `step`.
    pub fn factor(&self, step: u64) -> f64 {
        let warm = |warmup: u32| {
            if warmup > 0 && step <= warmup as u64 {
                step as f64 / warmup as f64
            } else {
                1.0
            }
        };
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Warmup { warmup } => warm(warmup),
            Schedule::Cosine { warmup, total, min_ratio } => {
                if step <= warmup as u64 {
                    return warm(warmup);
                }
                let span = (total.saturating_sub(warmup)).max(1) as f64;
                let progress = ((step - warmup as u64) as f64 / span).min(1.0);
                min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// SGD momentum (Momentum only).
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Applied to matrices only (embeddings and Linear weights), as in nanoGPT.
    pub weight_decay: f64,
    /// Global-norm gradient clipping; 0 turns it off.
    pub max_grad_norm: f64,
    pub schedule: Schedule,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::AdamW,
            lr: 3e-3,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            schedule: Schedule::Constant,
        }
    }
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("learning_rate", self.lr, 0.0, 100.0)?;
        check_range("momentum", self.momentum, 0.0, 0.9999)?;
        check_range("beta1", self.beta1, 0.0, 0.9999)?;
        check_range("beta2", self.beta2, 0.0, 0.999999)?;
        check_range("eps", self.eps, 1e-30, 1.0)?;
        check_range("weight_decay", self.weight_decay, 0.0, 10.0)?;
        check_range("max_grad_norm", self.max_grad_norm, 0.0, 1e6)?;
        if let Schedule::Cosine { min_ratio, .. } = self.schedule {
            check_range("min_lr_ratio", min_ratio, 0.0, 1.0)?;
        }
        Ok(())
    }

    /// The update this optimizer runs at every step: the only place that
    /// says which kernel an optimizer is.
    pub fn update_rule(&self) -> UpdateRule {
        let (kernel, weight_decay) = match self.kind {
            OptimizerKind::Sgd => (UpdateKernel::Sgd { momentum: 0.0 }, self.weight_decay),
            OptimizerKind::Momentum => (UpdateKernel::Sgd { momentum: self.momentum }, self.weight_decay),
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let adam = UpdateKernel::Adam { beta1: self.beta1, beta2: self.beta2, eps: self.eps };
                // Adam is AdamW with no weight decay
                (adam, if self.kind == OptimizerKind::Adam { 0.0 } else { self.weight_decay })
            }
        };
        UpdateRule { kernel, weight_decay, max_grad_norm: self.max_grad_norm }
    }

    /// The numbers of 1-based `step` that the update reads.
    pub fn step_scalars(&self, step: u64) -> StepScalars {
        StepScalars {
            // rounded to f32 here, not in a backend: the GPU reads an f32,
            // and the CPU steps with the very same value
            lr: (self.lr * self.schedule.factor(step)) as f32,
            bias_correction1: bias_correction(self.beta1, step),
            bias_correction2: bias_correction(self.beta2, step),
        }
    }
}

/// 1 − β^t, Adam's bias correction of a moment at 1-based step t.
pub fn bias_correction(beta: f64, step: u64) -> f64 {
    1.0 - beta.powi(step.min(i32::MAX as u64) as i32)
}

/// Which update kernel a step runs, with the hyperparameters it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpdateKernel {
    /// `sgd_update`: heavy-ball momentum, moment1 the velocity; momentum 0 is
    /// plain SGD. Weight decay is L2 (added to the gradient).
    Sgd { momentum: f64 },
    /// `adamw_update`: moment1 m and moment2 v, bias-corrected. Weight decay
    /// is decoupled (AdamW).
    Adam { beta1: f64, beta2: f64, eps: f64 },
}

/// What an optimizer step does, the same at every step of a run: derived
/// once from an `OptimizerConfig` (`update_rule`), so the backends dispatch
/// on the kernel and never on the optimizer's kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateRule {
    pub kernel: UpdateKernel,
    /// On the decayed prefix of the trainable values only (matrices); 0 is none.
    pub weight_decay: f64,
    /// Global-norm clipping threshold; 0 turns it off.
    pub max_grad_norm: f64,
}

impl UpdateRule {
    /// min(1, max_grad_norm / ‖g‖): what global-norm clipping multiplies the
    /// gradient by (the GPU computes the same in `optimizer.wgsl`).
    pub fn clip_factor(&self, grad_norm: f64) -> f64 {
        if self.max_grad_norm > 0.0 && grad_norm > self.max_grad_norm {
            self.max_grad_norm / grad_norm
        } else {
            1.0
        }
    }
}

/// The numbers of one step that the update reads, computed once per step:
/// the learning rate from the schedule and Adam's bias corrections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepScalars {
    pub lr: f32,
    /// 1 − β1^t, kept in f64 for the f64 reference
    pub bias_correction1: f64,
    /// 1 − β2^t
    pub bias_correction2: f64,
}

impl StepScalars {
    /// As the GPU's scalars buffer holds them: lr, 1 − β1^t, 1 − β2^t.
    pub fn to_f32(self) -> [f32; 3] {
        [self.lr, self.bias_correction1 as f32, self.bias_correction2 as f32]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_start_warm_and_end_at_min() {
        let s = Schedule::Cosine { warmup: 10, total: 110, min_ratio: 0.1 };
        assert!((s.factor(5) - 0.5).abs() < 1e-12);
        assert!((s.factor(10) - 1.0).abs() < 1e-12);
        assert!((s.factor(60) - 0.55).abs() < 1e-12);
        assert!((s.factor(110) - 0.1).abs() < 1e-12);
        assert!((s.factor(500) - 0.1).abs() < 1e-12);
        assert_eq!(Schedule::Warmup { warmup: 4 }.factor(2), 0.5);
    }

    #[test]
    fn schedules_read_back_as_written_and_bad_ones_say_why() {
        for s in [
            Schedule::Constant,
            Schedule::Warmup { warmup: 5 },
            Schedule::Cosine { warmup: 2, total: 9, min_ratio: 0.25 },
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s, "{json}");
        }
        assert_eq!(serde_json::to_string(&Schedule::Warmup { warmup: 5 }).unwrap(), r#"{"kind":"warmup","warmup":5}"#);
        for (json, says) in [
            (r#"{"kind":"step"}"#, "unknown schedule kind \"step\""),
            (r#"{"kind":"cosine","warmup":1,"total":5}"#, "needs `min_ratio`"),
            (r#"{"kind":"warmup"}"#, "needs `warmup`"),
            (r#"{"kind":"constant","total":5}"#, "a constant schedule has no `total`"),
            (r#"{"kind":"warmup","warmup":-1}"#, "invalid value"),
            (r#"{"kind":"warmup","warmup":1,"speed":2}"#, "unknown field `speed`"),
            (r#"{"warmup":1}"#, "missing field `kind`"),
        ] {
            let err = serde_json::from_str::<Schedule>(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn each_optimizer_names_its_kernel_and_constants() {
        let base = OptimizerConfig { weight_decay: 0.1, momentum: 0.8, ..Default::default() };
        let rule = |kind| OptimizerConfig { kind, ..base }.update_rule();
        assert_eq!(rule(OptimizerKind::Sgd).kernel, UpdateKernel::Sgd { momentum: 0.0 });
        assert_eq!(rule(OptimizerKind::Momentum).kernel, UpdateKernel::Sgd { momentum: 0.8 });
        let adam = UpdateKernel::Adam { beta1: base.beta1, beta2: base.beta2, eps: base.eps };
        assert_eq!(rule(OptimizerKind::Adam), UpdateRule { kernel: adam, weight_decay: 0.0, max_grad_norm: 1.0 });
        assert_eq!(rule(OptimizerKind::AdamW).weight_decay, 0.1);
        assert_eq!(rule(OptimizerKind::Sgd).weight_decay, 0.1);
        assert_eq!(rule(OptimizerKind::Sgd).clip_factor(4.0), 0.25);
        assert_eq!(rule(OptimizerKind::Sgd).clip_factor(0.5), 1.0);
        let at = base.step_scalars(2);
        assert_eq!(at.to_f32(), [3e-3, (1.0 - 0.9f64 * 0.9) as f32, (1.0 - 0.99f64 * 0.99) as f32]);
    }

    #[test]
    fn bad_settings_name_the_field() {
        let cfg = OptimizerConfig { lr: f64::NAN, ..Default::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("learning_rate"));
        let cfg = OptimizerConfig { beta2: 1.5, ..Default::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("beta2"));
        assert!("rmsprop?".parse::<OptimizerKind>().unwrap_err().to_string().contains("optimizer"));
    }
}
