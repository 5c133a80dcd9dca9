//! The "Does this affect my training?" calculator for the page (wasm32
//! only): www/lab/affected.js hands the reader's counts and B, b, R here and
//! draws what comes back, which is what `gradlab affected --json` prints —
//! both are `accum::affected`.

use wasm_bindgen::prelude::*;

use super::{js_err, js_tree, to_js};

use crate::accum::affected::{lengths_from_text, token_weights_for, AffectedSettings, CountUnit};

/// {lengths: number[], batch?: number, micro_batch: number, ranks?: number}
/// → the `--json` answer: per example `naive` and `local` (its tokens'
/// weight over corrected's, null for one with no tokens), `placement`,
/// `summary.{naive,local}` and `verdict`. Errors read "field: reason", the
/// field as the CLI's flag (batch, micro-batch, ranks, lengths).
#[wasm_bindgen(js_name = tokenWeightsFor, unchecked_return_type = "any")]
pub fn token_weights_for_js(
    #[wasm_bindgen(
        unchecked_param_type = "{ lengths: number[]; batch?: number | null; micro_batch: number; ranks?: number | null }"
    )]
    settings: JsValue,
) -> Result<JsValue, JsError> {
    let settings = js_tree(&settings)
        .and_then(|tree| crate::strict::read::<AffectedSettings>(tree, "calculator setting"))
        .map_err(|e| JsError::new(&format!("settings: {e}")))?;
    to_js(&token_weights_for(&settings).map_err(js_err)?)
}

/// The counts in a pasted list or a file's text: whole numbers separated by
/// commas or white space, or JSONL (`accum::affected::lengths_from_text`),
/// counted in `unit` ("bytes" or "words"), only the completions' with
/// `mask_prompt`. Errors read "lengths: reason".
#[wasm_bindgen(js_name = lengthsFromText)]
pub fn lengths_from_text_js(text: &str, mask_prompt: bool, unit: &str) -> Result<Vec<u32>, JsError> {
    let unit = match unit {
        "bytes" => CountUnit::Bytes,
        "words" => CountUnit::Words,
        _ => return Err(JsError::new(&format!("unit: must be \"bytes\" or \"words\", got \"{unit}\""))),
    };
    let lengths = lengths_from_text(text, "lengths", mask_prompt, unit).map_err(js_err)?;
    // a count above u32::MAX tokens is no real example
    lengths
        .into_iter()
        .map(|n| {
            u32::try_from(n).map_err(|_| JsError::new(&format!("lengths: {n} tokens is more than any example holds")))
        })
        .collect()
}
