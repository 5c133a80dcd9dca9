//! The JavaScript API the page uses (wasm32 only): a thin shell over the
//! library, one file per job. The page draws and handles events; every number
//! it shows is computed here.
//!
//! - `catalog`: the presets, the shipped corpora, the settings check;
//! - `lab`: `WebLab`, a running lab, over `lab::Lab`;
//! - `device`: the page's one GPU device, which every lab shares;
//! - `experiment`: the reference experiment and the strategies' looks;
//! - `affected`: the "Does this affect my training?" calculator;
//! - `state`: a lab's state as typed arrays, in both builds;
//! - `playground`: `WebPlayground`, over `playground`;
//! - in the module's full build (`rarely-used`) only, `bench`: `WebBench`,
//!   for the benchmark page, and `files`: the file codecs.
//!
//! Here: what they share — how a JavaScript value becomes settings or a
//! backend, and how errors and results cross back.
//!
//! Errors cross into JavaScript as `Error`s whose message names the field and
//! the problem, ready to show to the user.

use wasm_bindgen::prelude::*;

use crate::lab::settings::{Backend, LabSettings};
use crate::model::ConfigError;
use crate::strict::Tree;

mod affected;
#[cfg(feature = "rarely-used")]
mod bench;
mod catalog;
mod device;
mod experiment;
#[cfg(feature = "rarely-used")]
mod files;
mod lab;
mod playground;
pub mod state;

pub use affected::{lengths_from_text_js, token_weights_for_js};
#[cfg(feature = "rarely-used")]
pub use bench::WebBench;
pub use catalog::{corpora, corpus_available, presets, provide_corpus, validate_lab_config};
#[cfg(feature = "rarely-used")]
pub use files::{decode_state, decode_weights, encode_state, encode_weights};
pub use lab::WebLab;
pub use playground::WebPlayground;
/// The threads build's `initThreadPool(threads)`: starts rayon's pool on as
/// many Web Workers sharing this module's memory (www/wasm.js
/// loadGradlabThreads), before any lab is built.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A refusal of settings as the page shows it: the field named as the API
/// and the page's URL spell it ("seq_len (ctx): …", `lab::page::for_reader`).
fn settings_err(e: ConfigError) -> JsError {
    JsError::new(&crate::lab::page::for_reader(&e))
}

/// Lab settings from a JavaScript object, every key checked (`strict`): an
/// unknown one is refused by name, with the nearest setting or the list.
fn parse_settings(value: JsValue) -> Result<LabSettings, ConfigError> {
    let tree = js_tree(&value).map_err(|reason| ConfigError::Invalid { field: "settings", reason })?;
    LabSettings::from_tree(tree)
}

/// How deep an options object may nest: settings nest two levels
/// (optimizer.schedule); this keeps an object that holds itself from
/// recursing without end.
const MAX_DEPTH: usize = 16;

/// A JavaScript value as a `strict::Tree`: every own enumerable key of every
/// plain object (serde-wasm-bindgen reads only a struct's declared ones, so
/// its `deny_unknown_fields` never fires), a number as a safe integer or a
/// float as serde-wasm-bindgen reads it, an array or typed array as a
/// sequence, null and undefined as nothing.
fn js_tree(value: &JsValue) -> Result<Tree, String> {
    tree_at(value, 0)
}

fn tree_at(value: &JsValue, depth: usize) -> Result<Tree, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nests deeper than {MAX_DEPTH} levels"));
    }
    if value.is_null() || value.is_undefined() {
        return Ok(Tree::Unit);
    }
    if let Some(b) = value.as_bool() {
        return Ok(Tree::Bool(b));
    }
    if let Some(x) = value.as_f64() {
        return Ok(if js_sys::Number::is_safe_integer(value) { Tree::Int(x as i64) } else { Tree::Float(x) });
    }
    if value.is_bigint() {
        if let Ok(i) = i64::try_from(value.clone()) {
            return Ok(Tree::Int(i));
        }
        return u64::try_from(value.clone()).map(Tree::UInt).map_err(|_| "a BigInt outside 64 bits".to_string());
    }
    if let Some(s) = value.as_string() {
        return Ok(Tree::Str(s));
    }
    if js_sys::Array::is_array(value) || js_sys::ArrayBuffer::is_view(value) {
        let items = js_sys::try_iter(value).ok().flatten().ok_or("an array that cannot be read")?;
        return items
            .map(|item| {
                item.map_err(|_| "an array that cannot be read".to_string()).and_then(|v| tree_at(&v, depth + 1))
            })
            .collect::<Result<_, _>>()
            .map(Tree::Seq);
    }
    if value.is_function() || value.is_symbol() || !value.is_object() {
        return Err(format!("{} is no settings value", value.js_typeof().as_string().unwrap_or_default()));
    }
    js_sys::Object::entries(value.unchecked_ref())
        .iter()
        .map(|entry| {
            let pair: js_sys::Array = entry.unchecked_into();
            let key = pair.get(0).as_string().unwrap_or_default();
            Ok((key, tree_at(&pair.get(1), depth + 1)?))
        })
        .collect::<Result<_, String>>()
        .map(Tree::Map)
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_err)
}

/// The backend `WebLab.create` was asked for: "webgpu", "cpu" or
/// "reference"; `true` and `false`, as older callers pass, are "webgpu" and
/// "reference".
fn parse_backend(backend: &JsValue) -> Result<Backend, ConfigError> {
    if let Some(gpu) = backend.as_bool() {
        return Ok(if gpu { Backend::Gpu } else { Backend::Reference });
    }
    match backend.as_string().as_deref() {
        Some("webgpu") => Ok(Backend::Gpu),
        Some("cpu") => Ok(Backend::Cpu),
        Some("reference") => Ok(Backend::Reference),
        _ => Err(ConfigError::Invalid {
            field: "backend",
            reason: format!(
                "must be \"webgpu\", \"cpu\" or \"reference\" (or true / false), got {}",
                js_sys::JSON::stringify(backend)
                    .ok()
                    .and_then(|s| s.as_string())
                    .unwrap_or_else(|| "a value JSON cannot write".into())
                    .chars()
                    .take(40)
                    .collect::<String>()
            ),
        }),
    }
}
