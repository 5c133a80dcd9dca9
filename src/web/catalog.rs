//! The catalogs the page builds its choices from, and the settings check it
//! runs before building a lab: the model presets, the shipped corpora (and
//! the hand-over of a corpus the page fetched). Synchronous, and nothing here
//! holds state but the corpora handed over.
//!
//! Not here: a lab itself (`lab`).

use wasm_bindgen::prelude::*;

use super::device::shared_limits;
use super::{js_err, parse_backend, parse_settings, to_js};
use crate::gpu::plan::webgpu_limits;
use crate::lab::page::for_reader;
use crate::lab::settings::Backend;
use crate::model::{ConfigError, ModelConfig, ParamLayout};

/// Checks lab settings for a lab on `backend` (as for `WebLab.create`;
/// WebGPU when left out) without building anything; returns the problem in
/// words, or undefined when they are fine. For WebGPU every buffer the lab
/// would make is checked against the limits of this module's GPU device
/// when a lab has opened it, else against WebGPU's defaults (which every
/// adapter allows, so what passes here passes `create` too), and the lab's
/// memory against `GPU_MEMORY_BUDGET`; a key that is no setting is refused
/// by name.
#[wasm_bindgen(js_name = validateLabConfig)]
pub fn validate_lab_config(config: JsValue, backend: Option<JsValue>) -> Option<String> {
    let check = || -> Result<(), ConfigError> {
        let backend_kind = backend.as_ref().map_or(Ok(Backend::Gpu), parse_backend)?;
        let limits = shared_limits().unwrap_or_else(webgpu_limits);
        parse_settings(config)?.resolve_on(backend_kind, &limits).map(|_| ())
    };
    check().err().map(|e| for_reader(&e))
}

/// The model presets, smallest first: [{name, vocab_size, block_size,
/// n_layer, n_head, n_embd, parameters}]. The page builds its choices from
/// this list instead of repeating it.
#[wasm_bindgen]
pub fn presets() -> Result<JsValue, JsError> {
    #[derive(serde::Serialize)]
    struct Preset {
        name: &'static str,
        #[serde(flatten)]
        config: ModelConfig,
        parameters: usize,
    }
    let list: Vec<Preset> = ModelConfig::PRESETS
        .iter()
        .map(|(name, make)| Preset { name, config: make(), parameters: ParamLayout::new(&make()).num_params })
        .collect();
    to_js(&list)
}

/// The shipped corpora, the default first: [{name, title, documents, files,
/// available}]. `files` lie in `data/corpus/`; where `available` is false the
/// page fetches them and hands them over (`provideCorpus`) before a lab uses
/// the corpus.
#[wasm_bindgen]
pub fn corpora() -> Result<JsValue, JsError> {
    #[derive(serde::Serialize)]
    struct Shipped {
        name: &'static str,
        title: &'static str,
        documents: &'static str,
        files: &'static [&'static str],
        available: bool,
    }
    let list = crate::data::CORPORA
        .iter()
        .map(|c| {
            let available = crate::data::corpus_available(c.name).map_err(js_err)?;
            Ok(Shipped { name: c.name, title: c.title, documents: c.documents, files: c.files, available })
        })
        .collect::<Result<Vec<_>, JsError>>()?;
    to_js(&list)
}

/// Hands over the text of shipped corpus `name`'s files (in the order
/// `corpora()` lists them), fetched by the page.
#[wasm_bindgen(js_name = provideCorpus)]
pub fn provide_corpus(name: &str, files: Vec<String>) -> Result<(), JsError> {
    crate::data::provide_corpus(name, files).map_err(js_err)
}

/// Whether shipped corpus `name` can be used now.
#[wasm_bindgen(js_name = corpusAvailable)]
pub fn corpus_available(name: &str) -> Result<bool, JsError> {
    crate::data::corpus_available(name).map_err(js_err)
}
