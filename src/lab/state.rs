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
    /// an error naming it by its path (a state fits only a lab of the same
    /// config). The two configs are compared through their pretty `Debug`
    /// text, one field to a line, so no serialiser is needed in the module
    /// every page loads.
    pub fn check_config(&self, other: &LabConfig) -> Result<(), ConfigError> {
        if &self.config == other {
            return Ok(());
        }
        let reason = match first_difference(&format!("{:#?}", self.config), &format!("{other:#?}")) {
            Some((path, saved, now)) => {
                format!("was saved from a lab with {path} = {saved}; this lab has {path} = {now}")
            }
            None => "was saved from a lab whose config differs from this one's".to_string(),
        };
        Err(ConfigError::Invalid { field: "state", reason })
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

/// Where two pretty `Debug` texts of the same type first differ: the field's
/// path (`optimizer.lr`, `runs.2.micro_batch`) and its value in each, or
/// None when they read the same.
fn first_difference(saved: &str, now: &str) -> Option<(String, String, String)> {
    let (a, b): (Vec<&str>, Vec<&str>) = (saved.lines().map(str::trim).collect(), now.lines().map(str::trim).collect());
    // The blocks enclosing the current line: each one's name, the line that
    // opens it and the index its next unnamed item takes (None inside a
    // variant's parentheses, whose one item is the variant's value).
    struct Open {
        name: String,
        line: usize,
        next: Option<usize>,
    }
    let mut open: Vec<Open> = Vec::new();
    let joined = |open: &[Open], last: &str| {
        let names = open.iter().map(|o| o.name.as_str()).chain([last]);
        names.filter(|n| !n.is_empty()).collect::<Vec<_>>().join(".")
    };
    for (i, line) in a.iter().enumerate() {
        let closes = line.starts_with(['}', ']', ')']);
        let other_closes = b.get(i).is_some_and(|l| l.starts_with(['}', ']', ')']));
        if b.get(i) != Some(line) && (closes || other_closes) {
            // a list of another length: the whole list differs
            let block = open.pop()?;
            return Some((joined(&open, &block.name), value_at(&a, block.line), value_at(&b, block.line)));
        }
        if closes {
            open.pop();
            continue;
        }
        let name = match line.split_once(": ") {
            Some((key, _)) => key.trim_matches('"').to_string(),
            None => match open.last_mut().and_then(|o| o.next.as_mut()) {
                Some(next) => {
                    *next += 1;
                    (*next - 1).to_string()
                }
                None => String::new(),
            },
        };
        if b.get(i) != Some(line) {
            return Some((joined(&open, &name), value_at(&a, i), value_at(&b, i)));
        }
        if line.ends_with(['{', '[', '(']) {
            let next = (!line.ends_with('(')).then_some(0);
            open.push(Open { name, line: i, next });
        }
    }
    None
}

/// The value a pretty `Debug` line starts: what follows its field name, and
/// for a struct, list or variant that opens there everything to its close,
/// on one line.
fn value_at(lines: &[&str], i: usize) -> String {
    let Some(line) = lines.get(i) else { return "nothing".to_string() };
    let mut text = line.split_once(": ").map_or(*line, |(_, v)| v).to_string();
    if line.ends_with(['{', '[', '(']) {
        let mut depth = 1;
        for next in &lines[i + 1..] {
            depth += usize::from(next.ends_with(['{', '[', '(']));
            depth -= usize::from(next.starts_with(['}', ']', ')']));
            text.push(' ');
            text.push_str(next);
            if depth == 0 {
                break;
            }
        }
    }
    let text = text.trim_end_matches(',');
    text.replace(", }", " }").replace(", ]", " ]").replace(", )", " )").replace("( ", "(").replace(" )", ")")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LoraConfig, ModelConfig};

    fn state(config: LabConfig) -> LabState {
        LabState { config, steps: 0, sampler: 0, runs: Vec::new(), halted: Vec::new() }
    }

    fn refusal(saved: &LabConfig, now: &LabConfig) -> String {
        state(saved.clone()).check_config(now).unwrap_err().to_string()
    }

    #[test]
    fn a_config_that_differs_is_named_by_the_path_of_its_first_field() {
        let base = LabConfig::sweep(ModelConfig::nano(), 8, 1.0, 7);
        assert!(state(base.clone()).check_config(&base).is_ok());

        let mut lr = base.clone();
        lr.optimizer.lr = 0.125;
        let e = refusal(&base, &lr);
        assert!(e.contains(&format!("optimizer.lr = {:?};", base.optimizer.lr)), "{e}");
        assert!(e.contains("this lab has optimizer.lr = 0.125"), "{e}");

        let mut layers = base.clone();
        layers.model.n_layer += 1;
        let e = refusal(&base, &layers);
        assert!(e.contains(&format!("model.n_layer = {}", base.model.n_layer)), "{e}");

        let mut run = base.clone();
        run.runs[1].micro_batch += 1;
        let e = refusal(&base, &run);
        assert!(e.contains("runs.1.micro_batch"), "{e}");

        // a list of another length: the whole list, on one line each
        let mut fewer = base.clone();
        fewer.runs.pop();
        let e = refusal(&base, &fewer);
        assert!(e.contains("runs = [") && !e.contains('\n'), "{e}");

        // a variant with a value against one without
        let mut lora = base.clone();
        lora.lora = Some(LoraConfig::all_layers(4, 1));
        let e = refusal(&base, &lora);
        assert!(e.contains("lora = None; this lab has lora = Some(LoraConfig {"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
