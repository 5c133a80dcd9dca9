//! Lab states saved by gradlab 0.1.0 (tests/fixtures/, made before issue 31
//! renamed the vocabulary) still load, and go on to the very metrics and
//! weights the release computed after saving them: a rename never costs a
//! reader a saved lab. One f32 CPU lab (four runs over three ranks, prompts
//! masked) and one f64 reference lab under LoRA.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use gradlab::cpu::{FastCpuRun, ReferenceRun};
use gradlab::data::shipped_corpus;
use gradlab::lab::{Lab, LabState};
use gradlab::model::ParamLayout;
use gradlab::train::Trainer;
use pollster::block_on;
use serde_json::Value;

/// An f64 as its bits, as the fixtures hold them (decimal text need not
/// parse back to the same float).
fn bits(x: f64) -> String {
    format!("{:016x}", x.to_bits())
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Loads `name`.safetensors, builds a lab of its config (from other
/// weights, so the state must replace them), restores, takes three steps and
/// compares with what 0.1.0 wrote to `name`.next.json.
fn continues_as_saved<R: Trainer<Device = ()>>(name: &str) {
    let bytes = std::fs::read(fixture(&format!("{name}.safetensors"))).unwrap();
    let file = LabState::from_safetensors(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(file.metadata["page"].contains("gradlab-page/1"), "{name}: the page's metadata survives");
    let config = file.state.config.clone();
    let other = ParamLayout::new(&config.model).init(config.seed + 99);
    let corpus = Arc::new(shipped_corpus("kjv").unwrap());
    let mut lab = Lab::with_weights::<R>(&(), config, corpus, &other).unwrap();
    block_on(lab.restore(&file.state)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut metrics = Vec::new();
    for _ in 0..3 {
        block_on(lab.step()).unwrap();
        for m in block_on(lab.flush()).unwrap() {
            metrics.push(serde_json::json!({"run": m.run, "step": m.step, "true_loss": bits(m.true_loss), "logged_loss": bits(m.logged_loss), "grad_norm": bits(m.grad_norm), "weight_distance": bits(m.weight_distance), "tokens": m.tokens}));
        }
    }
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}.next.json"))).unwrap()).unwrap();
    assert_eq!(Value::Array(metrics), expected["metrics"], "{name}: the metrics after the restore");
    let sums: Vec<String> = (0..lab.specs().len())
        .map(|i| bits(block_on(lab.weights(i)).unwrap().iter().map(|&x| x as f64).sum()))
        .collect();
    assert_eq!(serde_json::json!(sums), expected["weight_sums"], "{name}: the weights after the restore");
}

#[test]
fn a_cpu_lab_saved_by_0_1_0_goes_on_as_it_did() {
    continues_as_saved::<FastCpuRun>("state-0.1.0-cpu");
}

#[test]
fn a_reference_lora_lab_saved_by_0_1_0_goes_on_as_it_did() {
    continues_as_saved::<ReferenceRun>("state-0.1.0-reference-lora");
}
