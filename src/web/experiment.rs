//! The reference experiment and the strategies' display metadata, for the
//! page (wasm32 only): what www/lab/sweep.js runs and says, the "final"
//! statistic it reports, and how www/lab/charts.js and sweepcharts.js name
//! and colour each strategy. A thin shell over `lab::experiment` and
//! `accum::Strategy::style`; the facts live there.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::to_js;

use crate::accum::{Strategy, StrategyStyle};
use crate::lab::experiment::{self, Experiment, REFERENCE};
use crate::optim::OptimizerConfig;

/// The reference experiment: {preset, context, batch, spread, corpus,
/// optimizer, lr, steps, first_seed, seeds, val_sequences, micro_batches,
/// optimizer_config}. `optimizer` is the name the lab settings take,
/// `optimizer_config` the whole `optimizer` object of lab settings,
/// `micro_batches` the sizes b beside the full batch, smallest first.
#[wasm_bindgen(js_name = referenceExperiment)]
pub fn reference_experiment() -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Reference {
        #[serde(flatten)]
        experiment: Experiment,
        micro_batches: Vec<usize>,
        optimizer_config: OptimizerConfig,
    }
    to_js(&Reference {
        experiment: REFERENCE,
        micro_batches: REFERENCE.micro_batches(),
        optimizer_config: REFERENCE.optimizer_config(),
    })
}

/// How many of `steps` steps "final" averages: the last tenth, at least one.
#[wasm_bindgen(js_name = finalWindow)]
pub fn final_window(steps: usize) -> usize {
    experiment::final_window(steps)
}

/// "final" of a run's values, one per step (a number, or null where the step
/// has none): the mean over the last tenth of the steps that have one; NaN
/// where none has.
#[wasm_bindgen(js_name = finalMean)]
pub fn final_mean(
    #[wasm_bindgen(unchecked_param_type = "(number | null)[]")] per_step: JsValue,
) -> Result<f64, JsError> {
    let values: Vec<Option<f64>> =
        serde_wasm_bindgen::from_value(per_step).map_err(|e| JsError::new(&format!("finalMean: {e}")))?;
    Ok(experiment::final_mean(&values))
}

/// Every strategy's display metadata, in `Strategy::ALL`'s order (the full
/// batch first): [{name, label, colour, shades, dashed}], `name` as the lab's
/// runs name the strategy.
#[wasm_bindgen]
pub fn strategies() -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Named {
        name: Strategy,
        #[serde(flatten)]
        style: StrategyStyle,
    }
    to_js(&Strategy::ALL.iter().map(|&s| Named { name: s, style: s.style() }).collect::<Vec<_>>())
}
