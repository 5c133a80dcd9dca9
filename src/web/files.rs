//! The lab's files, in the module's full build only (`rarely-used`):
//! a whole lab's state and a run's weights as safetensors. The module every
//! page loads hands them over as typed arrays (`WebLab.state`, `weights`)
//! and takes them back the same way (`restore`, `create`'s weights), so
//! safetensors and serde_json, the larger part of a file codec, load only
//! when a file is written or read (www/files.js).

use std::collections::BTreeMap;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use super::state::{config_from, float32_vector, from_object, to_object};
use super::{js_err, parse_backend, parse_settings, settings_err, to_js};
use crate::checkpoint::{from_safetensors, to_safetensors};
use crate::lab::LabState;
use crate::model::ParamLayout;

/// A lab's state (`WebLab.state`) as a file, with `page` (the page's
/// settings and curves, any text) and `twin` (another lab's state file: the
/// f64 twin's) inside.
#[wasm_bindgen(js_name = encodeState)]
pub fn encode_state(state: JsValue, page: String, twin: Option<Vec<u8>>) -> Result<Uint8Array, JsError> {
    let state = from_object(&state).map_err(js_err)?;
    let metadata = BTreeMap::from([("page".to_string(), page)]);
    let attachments: BTreeMap<String, Vec<u8>> = twin.map(|t| ("twin".to_string(), t)).into_iter().collect();
    let bytes = state.to_safetensors(&metadata, &attachments).map_err(|e| js_err(format!("state: {e}")))?;
    Ok(Uint8Array::from(&bytes[..]))
}

/// What a state file holds, without building anything: {state (for
/// `WebLab.restore`), page, steps, config, twin (a Uint8Array, or
/// undefined)}, or an error saying what is wrong with the file.
#[wasm_bindgen(js_name = decodeState)]
pub fn decode_state(bytes: &[u8]) -> Result<JsValue, JsError> {
    let file = LabState::from_safetensors(bytes).map_err(|e| js_err(format!("state file: {e}")))?;
    let cannot = |_| js_err("state file: cannot be read");
    let out = Object::new();
    let set = |key: &str, value: JsValue| Reflect::set(&out, &key.into(), &value).map(|_| ());
    set("state", to_object(&file.state).map_err(js_err)?).map_err(cannot)?;
    let page = file.metadata.get("page").cloned().unwrap_or_default();
    set("page", JsValue::from_str(&page)).map_err(cannot)?;
    set("steps", JsValue::from_f64(file.state.steps as f64)).map_err(cannot)?;
    set("config", to_js(&file.state.config)?).map_err(cannot)?;
    let twin = file.attachments.get("twin").map_or(JsValue::UNDEFINED, |t| Uint8Array::from(&t[..]).into());
    set("twin", twin).map_err(cannot)?;
    Ok(out.into())
}

/// A run's weights (`WebLab.weights`) as a safetensors file for the model of
/// `config` (`WebLab.config()`): GPT-2 names, float32.
#[wasm_bindgen(js_name = encodeWeights)]
pub fn encode_weights(config: JsValue, weights: JsValue) -> Result<Uint8Array, JsError> {
    let config = config_from(config, "config").map_err(js_err)?;
    let weights = float32_vector(&weights, "weights").map_err(js_err)?;
    let layout = ParamLayout::new(&config.model);
    if weights.len() != layout.total {
        return Err(js_err(format!("weights: {} values, the model has {} parameters", weights.len(), layout.total)));
    }
    let bytes = to_safetensors(&layout, &weights, None).map_err(js_err)?;
    Ok(Uint8Array::from(&bytes[..]))
}

/// The weights in safetensors `bytes` (our names or nanoGPT's) for the model
/// a lab of `settings` builds on `backend` (as for `WebLab.create`), flat,
/// ready for `create`; or an error naming the tensor and its shapes. A
/// longer position table than the context is fine: it is cropped.
#[wasm_bindgen(js_name = decodeWeights)]
pub fn decode_weights(
    settings: JsValue,
    bytes: &[u8],
    #[wasm_bindgen(unchecked_param_type = "boolean | \"webgpu\" | \"cpu\" | \"reference\"")] backend: JsValue,
) -> Result<Vec<f32>, JsError> {
    let page = parse_settings(settings).map_err(settings_err)?;
    let backend_kind = parse_backend(&backend).map_err(js_err)?;
    let model = page.model(backend_kind).map_err(js_err)?;
    from_safetensors(&ParamLayout::new(&model), bytes).map_err(js_err)
}
