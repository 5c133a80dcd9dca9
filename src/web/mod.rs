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

fn parse_settings(value: JsValue) -> Result<LabSettings, ConfigError> {
    LabSettings::deserialize_named(serde_wasm_bindgen::Deserializer::from(value))
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
