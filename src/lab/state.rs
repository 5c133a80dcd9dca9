//! A whole lab saved and restored: every run's `RunState`, the lab's step
//! count and where its batch sampler stands, in one safetensors file whose
//! metadata also carries the lab's config and whatever the caller adds (the
//! page puts its settings and curves there). A restored lab continues bit
//! for bit as the saved one would have.
//!
//! Tensors: `run{i}.weights`, `run{i}.adapters` (LoRA), `run{i}.moment1`,
//! `run{i}.moment2`, each float32 when every value is one (the GPU's) and
//! float64 otherwise (the CPU reference's), so nothing is rounded; plus any
//! byte attachments (`u8`) the caller adds.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::config::LabConfig;
use crate::checkpoint::CheckpointError;
use crate::model::ConfigError;
use crate::train::RunState;

/// What the metadata's `format` says, so a weights file is not taken for a state.
pub const STATE_FORMAT: &str = "gradlab-lab-state/1";

#[derive(Debug, Clone, PartialEq)]
pub struct LabState {
    pub config: LabConfig,
    /// Lockstep steps taken.
    pub steps: u64,
    /// The batch sampler's position (`BatchSampler::position`).
    pub sampler: u64,
    /// Every run's state, in `LabConfig::all_runs` order.
    pub runs: Vec<RunState>,
    /// Runs stopped for divergence (`Lab::halt`), in the same order.
    pub halted: Vec<bool>,
}

/// A state file opened: the lab's state, the caller's metadata and attachments.
#[derive(Debug, Clone)]
pub struct StateFile {
    pub state: LabState,
    pub metadata: BTreeMap<String, String>,
    pub attachments: BTreeMap<String, Vec<u8>>,
}

fn invalid(reason: String) -> CheckpointError {
    CheckpointError::File(reason)
}

/// Metadata keys the file format owns; the caller's keys may not use them.
const OWN_KEYS: [&str; 6] = ["format", "config", "steps", "sampler", "run_steps", "halted"];

impl LabState {
    /// The first field in which `other` differs from this state's config, as
    /// an error naming it (a state fits only a lab of the same config).
    pub fn check_config(&self, other: &LabConfig) -> Result<(), ConfigError> {
        let (a, b) = (serde_json::to_value(&self.config), serde_json::to_value(other));
        let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (a, b) else {
            return Err(ConfigError::Invalid { field: "state", reason: "its config cannot be compared".into() });
        };
        for (key, saved) in &a {
            if b.get(key) != Some(saved) {
                let now = b.get(key).map_or("nothing".to_string(), |v| v.to_string());
                return Err(ConfigError::Invalid {
                    field: "state",
                    reason: format!("was saved from a lab with {key} = {saved}; this lab has {key} = {now}"),
                });
            }
        }
        Ok(())
    }

    /// The file: this state, `metadata` (keys other than the format's own)
    /// and byte `attachments`.
    pub fn to_safetensors(
        &self,
        metadata: &BTreeMap<String, String>,
        attachments: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Vec<u8>, CheckpointError> {
        if let Some(key) = metadata.keys().find(|k| OWN_KEYS.contains(&k.as_str())) {
            return Err(invalid(format!("metadata key {key:?} is the state format's own")));
        }
        let mut meta: HashMap<String, String> = metadata.clone().into_iter().collect();
        meta.insert("format".into(), STATE_FORMAT.into());
        meta.insert("config".into(), serde_json::to_string(&self.config).map_err(|e| invalid(e.to_string()))?);
        meta.insert("steps".into(), self.steps.to_string());
        meta.insert("sampler".into(), self.sampler.to_string());
        let run_steps: Vec<u64> = self.runs.iter().map(|r| r.step).collect();
        meta.insert("run_steps".into(), serde_json::to_string(&run_steps).map_err(|e| invalid(e.to_string()))?);
        meta.insert("halted".into(), serde_json::to_string(&self.halted).map_err(|e| invalid(e.to_string()))?);

        let mut tensors: Vec<(String, Dtype, Vec<u8>)> = Vec::new();
        for (i, run) in self.runs.iter().enumerate() {
            let mut add = |what: &str, values: &[f64]| tensors.push(encode(format!("run{i}.{what}"), values));
            add("weights", &run.weights);
            if let Some(a) = &run.adapters {
                add("adapters", a);
            }
            add("moment1", &run.moment1);
            add("moment2", &run.moment2);
        }
        for (name, bytes) in attachments {
            if name.starts_with("run") {
                return Err(invalid(format!("attachment name {name:?} is taken by the runs' tensors")));
            }
            tensors.push((name.clone(), Dtype::U8, bytes.clone()));
        }
        let views = tensors
            .iter()
            .map(|(name, dtype, data)| {
                let width = if *dtype == Dtype::U8 { 1 } else { dtype.bitsize() / 8 };
                TensorView::new(*dtype, vec![data.len() / width], data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        safetensors::serialize(views, Some(meta)).map_err(|e| invalid(e.to_string()))
    }

    /// Opens a file written by `to_safetensors`, saying what is wrong with
    /// any other (a weights file, a truncated download, a damaged value).
    pub fn from_safetensors(bytes: &[u8]) -> Result<StateFile, CheckpointError> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| invalid(format!("not a safetensors file ({e})")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| invalid(e.to_string()))?;
        let mut metadata: BTreeMap<String, String> =
            header.metadata().clone().unwrap_or_default().into_iter().collect();
        let mut take = |key: &str| {
            metadata.remove(key).ok_or_else(|| invalid(format!("no {key:?} in its metadata; not a gradlab lab state")))
        };
        let format = take("format")?;
        if format != STATE_FORMAT {
            return Err(invalid(format!("format {format:?} is not {STATE_FORMAT:?}")));
        }
        let config: LabConfig =
            serde_json::from_str(&take("config")?).map_err(|e| invalid(format!("config in its metadata: {e}")))?;
        let number = |key: &str, text: String| {
            text.parse::<u64>().map_err(|_| invalid(format!("{key} in its metadata is {text:?}, not a whole number")))
        };
        let steps = number("steps", take("steps")?)?;
        let sampler = number("sampler", take("sampler")?)?;
        let run_steps: Vec<u64> = serde_json::from_str(&take("run_steps")?)
            .map_err(|e| invalid(format!("run_steps in its metadata: {e}")))?;
        let runs_wanted = config.all_runs().len();
        if run_steps.len() != runs_wanted {
            return Err(invalid(format!("it holds {} runs; its config has {runs_wanted}", run_steps.len())));
        }
        let halted: Vec<bool> =
            serde_json::from_str(&take("halted")?).map_err(|e| invalid(format!("halted in its metadata: {e}")))?;
        if halted.len() != runs_wanted {
            return Err(invalid(format!(
                "halted in its metadata names {} runs; its config has {runs_wanted}",
                halted.len()
            )));
        }
        let read = |name: String| -> Result<Option<Vec<f64>>, CheckpointError> {
            match file.tensor(&name) {
                Ok(view) => decode(&name, &view).map(Some),
                Err(_) => Ok(None),
            }
        };
        let mut runs = Vec::new();
        for (i, &step) in run_steps.iter().enumerate() {
            let need = |what: &str| {
                read(format!("run{i}.{what}"))?.ok_or_else(|| invalid(format!("tensor run{i}.{what} is missing")))
            };
            runs.push(RunState {
                weights: need("weights")?,
                adapters: read(format!("run{i}.adapters"))?,
                moment1: need("moment1")?,
                moment2: need("moment2")?,
                step,
            });
        }
        let attachments = file
            .tensors()
            .into_iter()
            .filter(|(name, view)| !name.starts_with("run") && view.dtype() == Dtype::U8)
            .map(|(name, view)| (name, view.data().to_vec()))
            .collect();
        Ok(StateFile { state: LabState { config, steps, sampler, runs, halted }, metadata, attachments })
    }
}

/// float32 when every value is one exactly, float64 otherwise.
fn encode(name: String, values: &[f64]) -> (String, Dtype, Vec<u8>) {
    let fits_f32 = values.iter().all(|&x| (x as f32) as f64 == x || x.is_nan());
    if fits_f32 {
        (name, Dtype::F32, values.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect())
    } else {
        (name, Dtype::F64, values.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
}

fn decode(name: &str, view: &TensorView<'_>) -> Result<Vec<f64>, CheckpointError> {
    match view.dtype() {
        Dtype::F32 => {
            Ok(view.data().chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect())
        }
        Dtype::F64 => {
            Ok(view.data().chunks_exact(8).map(|c| f64::from_le_bytes(std::array::from_fn(|k| c[k]))).collect())
        }
        other => Err(invalid(format!("tensor {name} is {other:?}, expected F32 or F64"))),
    }
}
