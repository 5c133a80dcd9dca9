//! A lab's state as a JavaScript object (`WebLab.state` and `restore`), in
//! both builds of the module. The page keeps it in memory (the GPU's
//! checkpoint, from which a lost device is recovered) or hands it to the
//! full build's `encodeState`, which writes the file: the module every page
//! loads carries no file format.
//!
//! `{format, config, steps, sampler, halted: [bool], runs: [{step, weights,
//! adapters (LoRA only), moment1, moment2}]}`. `sampler`, where the batch
//! sampler's draw stands, is a BigInt: it takes all 64 bits, which a
//! JavaScript number would round. Each vector is a Float32Array
//! when every value is one exactly (the GPU's, the f32 CPU's) and a
//! Float64Array otherwise (the f64 reference's), so nothing is rounded.

use js_sys::{Array, Float32Array, Float64Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::lab::{LabConfig, LabState, STATE_FORMAT};
use crate::train::RunState;

/// Largest whole number a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn set(target: &Object, key: &str, value: JsValue) -> Result<(), String> {
    Reflect::set(target, &key.into(), &value).map(|_| ()).map_err(|_| format!("state: cannot set {key}"))
}

fn floats(values: &[f64]) -> JsValue {
    if values.iter().all(|&x| (x as f32) as f64 == x || x.is_nan()) {
        let narrow: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Float32Array::from(&narrow[..]).into()
    } else {
        Float64Array::from(values).into()
    }
}

/// The config as a plain object (serde's own reason when it cannot be).
fn config_object(config: &LabConfig) -> Result<JsValue, String> {
    use serde::Serialize;
    config
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| format!("state: its config cannot be written ({e})"))
}

/// `state` as the object above.
pub fn to_object(state: &LabState) -> Result<JsValue, String> {
    let out = Object::new();
    set(&out, "format", STATE_FORMAT.into())?;
    set(&out, "config", config_object(&state.config)?)?;
    set(&out, "steps", JsValue::from_f64(state.steps as f64))?;
    set(&out, "sampler", JsValue::from(state.sampler))?;
    set(&out, "halted", state.halted.iter().map(|&h| JsValue::from_bool(h)).collect::<Array>().into())?;
    let runs = Array::new();
    for run in &state.runs {
        let entry = Object::new();
        set(&entry, "step", JsValue::from_f64(run.step as f64))?;
        set(&entry, "weights", floats(&run.weights))?;
        if let Some(adapters) = &run.adapters {
            set(&entry, "adapters", floats(adapters))?;
        }
        set(&entry, "moment1", floats(&run.moment1))?;
        set(&entry, "moment2", floats(&run.moment2))?;
        runs.push(&entry);
    }
    set(&out, "runs", runs.into())?;
    Ok(out.into())
}

fn get(from: &JsValue, key: &str, field: &str) -> Result<JsValue, String> {
    if !from.is_object() {
        return Err(format!("{field}: expected an object"));
    }
    Reflect::get(from, &key.into()).map_err(|_| format!("{field}.{key}: cannot be read"))
}

/// A whole number from 0 to 2^53 − 1.
fn whole(value: &JsValue, field: &str) -> Result<u64, String> {
    match value.as_f64() {
        Some(x) if x.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&x) => Ok(x as u64),
        _ => Err(format!("{field}: expected a whole number from 0, got {}", describe(value))),
    }
}

/// What a value is, for an error: a number or a string as it is, else its type.
fn describe(value: &JsValue) -> String {
    match (value.as_f64(), value.as_string()) {
        (Some(x), _) => crate::model::config::short(x),
        (_, Some(s)) => format!("{:?}", s.chars().take(40).collect::<String>()),
        // a BigInt out of range: its digits (a 64-bit one says more than "bigint")
        _ if value.is_bigint() => js_sys::BigInt::unchecked_from_js_ref(value)
            .to_string(10)
            .ok()
            .and_then(|s| s.as_string())
            .map(|s| {
                let digits = s.chars().take(40).collect::<String>();
                format!("{digits}n")
            })
            .unwrap_or_else(|| "bigint".into()),
        _ => value.js_typeof().as_string().unwrap_or_default(),
    }
}

/// The values of a Float32Array or a Float64Array.
pub fn float_vector(value: &JsValue, field: &str) -> Result<Vec<f64>, String> {
    if let Some(a) = value.dyn_ref::<Float32Array>() {
        Ok(a.to_vec().into_iter().map(f64::from).collect())
    } else if let Some(a) = value.dyn_ref::<Float64Array>() {
        Ok(a.to_vec())
    } else {
        Err(format!("{field}: expected a Float32Array or a Float64Array, got {}", describe(value)))
    }
}

/// The values of a Float32Array (a run's weights, flat `ParamLayout`).
pub fn float32_vector(value: &JsValue, field: &str) -> Result<Vec<f32>, String> {
    match value.dyn_ref::<Float32Array>() {
        Some(a) => Ok(a.to_vec()),
        None => Err(format!("{field}: expected a Float32Array, got {}", describe(value))),
    }
}

/// The lab config in a state or from `WebLab.config()`, every key checked
/// (`strict`), naming the field a problem is in.
pub fn config_from(value: JsValue, field: &str) -> Result<LabConfig, String> {
    let tree = super::js_tree(&value).map_err(|reason| format!("{field}: {reason}"))?;
    crate::strict::read_at(tree, "config field", field)
}

/// The object above, read back and checked field by field; lengths are
/// checked against the lab by `Lab::restore`.
pub fn from_object(value: &JsValue) -> Result<LabState, String> {
    let format = get(value, "format", "state")?;
    if format.as_string().as_deref() != Some(STATE_FORMAT) {
        return Err(format!(
            "state: not a gradlab lab state (format {}, expected {STATE_FORMAT:?})",
            describe(&format)
        ));
    }
    let config = config_from(get(value, "config", "state")?, "state.config")?;
    let steps = whole(&get(value, "steps", "state")?, "state.steps")?;
    let sampler = get(value, "sampler", "state")?;
    let sampler = u64::try_from(sampler.clone())
        .map_err(|_| format!("state.sampler: expected a BigInt from 0 to 2^64 - 1, got {}", describe(&sampler)))?;
    let list = |key: &str| -> Result<Array, String> {
        get(value, key, "state")?
            .dyn_into::<Array>()
            .map_err(|v| format!("state.{key}: expected an array, got {}", describe(&v)))
    };
    let halted = list("halted")?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            h.as_bool().ok_or_else(|| format!("state.halted[{i}]: expected true or false, got {}", describe(&h)))
        })
        .collect::<Result<Vec<bool>, String>>()?;
    let mut runs = Vec::new();
    for (i, run) in list("runs")?.iter().enumerate() {
        let field = format!("state.runs[{i}]");
        let vector = |key: &str| float_vector(&get(&run, key, &field)?, &format!("{field}.{key}"));
        let adapters = get(&run, "adapters", &field)?;
        runs.push(RunState {
            weights: vector("weights")?,
            // left out or null: a run without LoRA
            adapters: if adapters.is_undefined() || adapters.is_null() { None } else { Some(vector("adapters")?) },
            moment1: vector("moment1")?,
            moment2: vector("moment2")?,
            step: whole(&get(&run, "step", &field)?, &format!("{field}.step"))?,
        });
    }
    Ok(LabState { config, steps, sampler, runs, halted })
}
