//! A lab saved and restored continues bit for bit as one that never
//! stopped (issue 11), on both backends, with and without LoRA and with
//! momentum as well as Adam; a state that does not fit is refused by name.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::sync::Arc;

use gradlab::checks::Seed;
use gradlab::cpu::{FastCpuRun, ReferenceRun};
use gradlab::data::{shipped_corpus, Corpus};
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::lab::{Lab, LabConfig, LabState, RunMetrics};
use gradlab::model::{LoraConfig, ModelConfig, ParamLayout};
use gradlab::optim::OptimizerKind;
use gradlab::rng::Rng;
use gradlab::train::Trainer;
use pollster::block_on;

fn corpus() -> Arc<Corpus> {
    Arc::new(shipped_corpus("kjv").unwrap())
}

/// An awkward little lab from `seed`: a context of 13 to 40, a batch of 6
/// cut into micro-batches of 1, 2 and 3, and LoRA or momentum when asked.
fn config(seed: u64, lora: bool, momentum: bool) -> LabConfig {
    let mut rng = Rng::new(seed);
    let t = 13 + rng.below(28);
    let model = ModelConfig { block_size: t, ..ModelConfig::nano() };
    let mut config = LabConfig::sweep(model, 6, 1.0, seed);
    config.runs.retain(|r| 6 % r.micro_batch == 0);
    config.optimizer.lr = 1e-2;
    if momentum {
        config.optimizer.kind = OptimizerKind::Momentum;
    }
    if lora {
        config.lora = Some(LoraConfig::all_layers(3, seed));
    }
    config
}

/// Metrics without their wall-clock throughput, which differs run to run.
fn timeless(mut m: Vec<RunMetrics>) -> Vec<RunMetrics> {
    for x in &mut m {
        x.tokens_per_second = 0.0;
    }
    m
}

fn all_weights(lab: &Lab) -> Vec<Vec<f32>> {
    (0..lab.specs().len()).map(|i| block_on(lab.weights(i)).unwrap()).collect()
}

/// Lab A takes `before + after` steps straight; lab B takes `before`, is
/// saved to a file, and a new lab C is restored from it and takes `after`.
/// C's metrics and weights must equal A's bit for bit.
fn resume_matches<R: Trainer>(device: &R::Device, config: LabConfig, before: usize, after: usize) {
    let init = ParamLayout::new(&config.model).init(config.seed);
    let mut a = Lab::with_weights::<R>(device, config.clone(), corpus(), &init).unwrap();
    let mut straight = Vec::new();
    for i in 0..before + after {
        block_on(a.step()).unwrap();
        let m = block_on(a.flush()).unwrap();
        if i >= before {
            straight.extend(timeless(m));
        }
    }

    let mut b = Lab::with_weights::<R>(device, config.clone(), corpus(), &init).unwrap();
    for _ in 0..before {
        block_on(b.step()).unwrap();
    }
    let saved = block_on(b.state()).unwrap();
    let meta = BTreeMap::from([("page".to_string(), "{\"curves\": []}".to_string())]);
    let attach = BTreeMap::from([("twin".to_string(), vec![1u8, 2, 3])]);
    let bytes = saved.to_safetensors(&meta, &attach).unwrap();
    drop(b);
    let file = LabState::from_safetensors(&bytes).unwrap();
    assert_eq!(file.state, saved, "the file gives back the state exactly");
    assert_eq!(file.metadata, meta);
    assert_eq!(file.attachments, attach);

    // C starts from other weights: the state must replace all of them
    let other = ParamLayout::new(&config.model).init(config.seed + 1);
    let mut c = Lab::with_weights::<R>(device, config, corpus(), &other).unwrap();
    block_on(c.step()).unwrap();
    block_on(c.restore(&file.state)).unwrap();
    assert_eq!(c.steps(), before as u64);
    let mut resumed = Vec::new();
    for _ in 0..after {
        block_on(c.step()).unwrap();
        resumed.extend(timeless(block_on(c.flush()).unwrap()));
    }
    assert_eq!(resumed, straight, "metrics after the restore");
    assert_eq!(all_weights(&c), all_weights(&a), "weights after the restore");
}

#[test]
fn a_restored_cpu_lab_continues_bit_for_bit() {
    let seed = Seed::fresh();
    for (lora, momentum) in [(false, false), (true, false), (false, true)] {
        eprintln!("lora {lora}, momentum {momentum}");
        resume_matches::<ReferenceRun>(&(), config(seed.0, lora, momentum), 3, 3);
        resume_matches::<FastCpuRun>(&(), config(seed.0, lora, momentum), 3, 3);
    }
}

#[test]
fn a_restored_gpu_lab_continues_bit_for_bit() {
    let ctx = GpuContext::new_blocking().unwrap();
    let seed = Seed::fresh();
    for (lora, momentum) in [(false, false), (true, false), (false, true)] {
        eprintln!("lora {lora}, momentum {momentum}");
        resume_matches::<GpuRun>(&ctx, config(seed.0, lora, momentum), 3, 3);
    }
}

#[test]
fn a_state_that_does_not_fit_is_refused_by_name_and_changes_nothing() {
    let seed = Seed::fresh();
    let config = config(seed.0, false, false);
    let mut lab = Lab::new::<ReferenceRun>(&(), config.clone(), corpus()).unwrap();
    block_on(lab.step()).unwrap();
    let saved = block_on(lab.state()).unwrap();
    let bytes = saved.to_safetensors(&BTreeMap::new(), &BTreeMap::new()).unwrap();

    // another learning rate: the field is named with both values
    let mut other = config.clone();
    other.optimizer.lr = 3e-3;
    let mut lab2 = Lab::new::<ReferenceRun>(&(), other, corpus()).unwrap();
    block_on(lab2.step()).unwrap();
    let before = all_weights(&lab2);
    let e = block_on(lab2.restore(&saved)).unwrap_err().to_string();
    assert!(e.contains("optimizer") && e.contains("0.01"), "{e}");
    assert_eq!(all_weights(&lab2), before, "a refused state changes nothing");
    assert_eq!(lab2.steps(), 1);

    // a weights file, garbage, a damaged header
    let layout = ParamLayout::new(&config.model);
    let weights = gradlab::checkpoint::to_safetensors(&layout, &layout.init(1), None).unwrap();
    let e = LabState::from_safetensors(&weights).unwrap_err().to_string();
    assert!(e.contains("not a gradlab lab state"), "{e}");
    let e = LabState::from_safetensors(b"junk").unwrap_err().to_string();
    assert!(e.contains("not a safetensors file"), "{e}");
    let e = LabState::from_safetensors(&bytes[..bytes.len() / 2]).unwrap_err().to_string();
    assert!(e.contains("not a safetensors file"), "{e}");
    // a state whose run lost a value
    let mut short = saved.clone();
    short.runs[1].moment2.pop();
    let e = block_on(lab.restore(&short)).unwrap_err().to_string();
    assert!(e.contains("moment2"), "{e}");
}
