//! `RunState`: everything that decides a run's next steps, so a saved run
//! continues exactly as one that never stopped (`Trainer::state`,
//! `Trainer::set_state`). Values are f64 whatever the backend: an f32 value
//! converts to f64 and back without changing a bit.

use crate::model::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    /// The weights the forward pass starts from, flat `ParamLayout`; under
    /// LoRA the frozen base (the merged weights follow from it).
    pub weights: Vec<f64>,
    /// Under LoRA, the adapters (flat `AdapterLayout`).
    pub adapters: Option<Vec<f64>>,
    /// The optimizer's two state vectors over what trains (Adam's first and
    /// second moments; momentum's velocity and an unused second).
    pub moment1: Vec<f64>,
    pub moment2: Vec<f64>,
    /// Optimizer steps taken (the schedule and Adam's bias corrections read it).
    pub step: u64,
}

impl RunState {
    /// Refuses a state whose vectors do not have the lengths a run needs:
    /// `weights` floats of weights, `trains` of what the optimizer steps.
    pub fn check(&self, weights: usize, adapters: Option<usize>, trains: usize) -> Result<(), ConfigError> {
        let wrong = |what: &str, got: usize, want: usize| ConfigError::Invalid {
            field: "state",
            reason: format!("{what} has {got} values, the run needs {want}"),
        };
        if self.weights.len() != weights {
            return Err(wrong("weights", self.weights.len(), weights));
        }
        match (adapters, &self.adapters) {
            (Some(want), Some(a)) if a.len() != want => return Err(wrong("adapters", a.len(), want)),
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    field: "state",
                    reason: "has no LoRA adapters; the run needs them".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    field: "state",
                    reason: "has LoRA adapters; the run has none".into(),
                })
            }
            _ => {}
        }
        for (what, v) in [("moment1", &self.moment1), ("moment2", &self.moment2)] {
            if v.len() != trains {
                return Err(wrong(what, v.len(), trains));
            }
        }
        Ok(())
    }
}
