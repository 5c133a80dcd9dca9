//! The one validation layer for what enters from JavaScript
//! (`lab::settings`), fuzzed: random and hostile settings never panic, every
//! refusal names a field, every setting drawn from the documented ranges is
//! accepted, and no accepted lab asks for more work per step than the budget.
#![cfg(not(target_arch = "wasm32"))]

use gradlab::lab::settings::{
    steps_per_call, work_per_step, Compute, LabSettings, CPU_WORK_BUDGET, GPU_WORK_BUDGET, MAX_STEPS_PER_CALL,
};
use gradlab::model::ModelConfig;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Every name a refusal may start with: the settings' fields, the checks'
/// names for them, and the optimizer's.
const FIELDS: &[&str] = &[
    "settings",
    "preset",
    "batch",
    "micro_batch",
    "spread",
    "seq_len",
    "block_size",
    "corpus",
    "text",
    "packing",
    "mask_prompt",
    "ranks",
    "lora_rank",
    "seed",
    "runs",
    "learning_rate",
    "momentum",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "max_grad_norm",
    "min_lr_ratio",
    "unknown preset",
];

fn named(e: &str) -> bool {
    FIELDS.iter().any(|f| e.starts_with(f))
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|x| json!(x)),
        any::<u64>().prop_map(|x| json!(x)),
        (-1e308f64..1e308).prop_map(|x| json!(x)),
        prop_oneof![Just(0.0f64), Just(-0.0), Just(1e-300), Just(f64::MAX), Just(0.5), Just(4096.0)]
            .prop_map(|x| json!(x)),
        "[a-z0-9 ]{0,12}".prop_map(Value::String),
        Just(json!("0x10")),
        Just(json!("  0.5 ")),
        Just(json!([1, 2])),
        Just(json!({"kind": "adamw", "lr": "fast"})),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "preset",
            "batch",
            "micro_batch",
            "spread",
            "seq_len",
            "optimizer",
            "seed",
            "sweep",
            "corpus",
            "text",
            "packing",
            "mask_prompt",
            "ranks",
            "lora_rank",
        ])
        .prop_map(String::from),
        // mistyped and made-up names
        prop::sample::select(vec!["microbatch", "bogus", "lr", "Batch", "__proto__", "constructor"])
            .prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hostile_settings_never_panic_and_refusals_name_a_field(
        fields in prop::collection::vec((key(), hostile_value()), 0..8)
    ) {
        let object: serde_json::Map<String, Value> = fields.into_iter().collect();
        let result = LabSettings::from_json(Value::Object(object.clone()))
            .and_then(|s| s.resolve(Compute::Gpu).map(|c| (s, c)));
        match result {
            Ok((settings, config)) => {
                prop_assert!(work_per_step(&config) <= GPU_WORK_BUDGET);
                // what the GPU accepts, the CPU fallback (nano) either accepts within its budget or refuses by name
                match settings.resolve(Compute::Cpu) {
                    Ok(cpu) => prop_assert!(work_per_step(&cpu) <= CPU_WORK_BUDGET),
                    Err(e) => prop_assert!(named(&e.to_string()), "unnamed refusal: {e}"),
                }
            }
            Err(e) => prop_assert!(named(&e.to_string()), "unnamed refusal of {object:?}: {e}"),
        }
    }

    #[test]
    fn settings_in_the_documented_ranges_are_accepted(
        preset in prop::sample::select(vec!["nano", "micro"]),
        batch in prop::sample::select(vec![4usize, 8, 16]),
        micro_pow in 0u32..5,
        spread in 0.0f64..=1.0,
        seq_len in 0usize..=128,
        lr in 1e-5f64..1.0,
        // what a JavaScript number holds exactly (a larger seed is refused, by name)
        seed in 0u64..(1 << 53),
        corpus in prop::sample::select(vec!["kjv", "devil"]),
        packed in any::<bool>(),
        mask in any::<bool>(),
        ranks_pow in 0u32..3,
        sweep in any::<bool>(),
        lora_rank in prop::sample::select(vec![0usize, 1, 4, 16]),
    ) {
        let micro_batch = (1usize << micro_pow).min(batch);
        let ranks = (1usize << ranks_pow).min(batch / micro_batch);
        let settings = json!({
            "preset": preset, "batch": batch, "micro_batch": micro_batch, "spread": spread, "seq_len": seq_len,
            "optimizer": {"lr": lr}, "seed": seed, "corpus": corpus,
            "packing": if packed { "packed" } else { "padded" }, "mask_prompt": mask && !packed, "ranks": ranks,
            "sweep": sweep, "lora_rank": lora_rank,
        });
        let parsed = LabSettings::from_json(settings.clone());
        prop_assert!(parsed.is_ok(), "{settings}: {:?}", parsed.err());
        let config = parsed.unwrap().resolve(Compute::Gpu);
        prop_assert!(config.is_ok(), "{settings}: {:?}", config.err());
    }

    #[test]
    fn step_counts_are_whole_numbers_within_the_bound(n in prop::num::f64::ANY) {
        match steps_per_call(n) {
            Ok(k) => prop_assert!((1..=MAX_STEPS_PER_CALL).contains(&k) && k as f64 == n),
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.starts_with("steps: must be a whole number"), "{e}");
                prop_assert!(e.len() < 120, "the value is printed short: {e}");
            }
        }
    }
}

#[test]
fn the_defects_found_are_refused_by_name() {
    let refuse = |v: Value| LabSettings::from_json(v).and_then(|s| s.resolve(Compute::Gpu)).unwrap_err().to_string();
    assert!(refuse(json!({"bogus": 1})).contains("bogus"));
    assert!(refuse(json!({"microbatch": 2})).contains("microbatch"));
    let e = refuse(json!({"batch": "8"}));
    assert!(e.contains("batch") && e.contains("invalid type"), "{e}");
    let e = refuse(json!({"optimizer": {"lr": 1e308}}));
    assert_eq!(e, "learning_rate must be at most 100, got 1e308");
    // four thousand sequences of the CPU reference would block the tab
    let e = LabSettings::from_json(json!({"batch": 4096, "micro_batch": 4096}))
        .unwrap()
        .resolve(Compute::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("batch:") && e.contains("operations per step"), "{e}");
    assert_eq!(steps_per_call(-1.0).unwrap_err().to_string(), "steps: must be a whole number from 1 to 1000, got -1");
    assert!(steps_per_call(1e9).is_err() && steps_per_call(2.5).is_err() && steps_per_call(f64::NAN).is_err());
    assert_eq!(steps_per_call(7.0).unwrap(), 7);
    // a LoRA rank wider than the model's channels adds nothing a full update could not
    let e = refuse(json!({"lora_rank": 65}));
    assert!(e.starts_with("lora_rank") && e.contains("64"), "{e}");
    // a seed the page's numbers cannot hold exactly would come back from config() as another
    let e = refuse(json!({"seed": 1u64 << 53}));
    assert!(e.starts_with("seed: 9007199254740992 is above"), "{e}");
    let largest = LabSettings::from_json(json!({"seed": (1u64 << 53) - 1})).unwrap();
    assert_eq!(largest.resolve(Compute::Gpu).unwrap().seed, (1 << 53) - 1);
    // missing fields default
    let defaults = LabSettings::from_json(json!({})).unwrap();
    assert_eq!(defaults, LabSettings::default());
    assert!(defaults.resolve(Compute::Gpu).is_ok() && defaults.resolve(Compute::Cpu).is_ok());
}

#[test]
fn the_f32_cpu_backend_takes_any_preset_within_its_own_budget() {
    let settings = |v: Value| LabSettings::from_json(v).unwrap();
    // the f64 reference always builds nano; the f32 backend builds the preset asked for
    let micro = settings(json!({"preset": "micro"}));
    assert_eq!(micro.resolve(Compute::Cpu).unwrap().model, ModelConfig::nano());
    // a preset that does not exist is refused on every backend, the reference's too
    for compute in [Compute::Gpu, Compute::CpuF32, Compute::Cpu] {
        let e = settings(json!({"preset": "0x10"})).resolve(compute).unwrap_err().to_string();
        assert!(e.starts_with("unknown preset \"0x10\""), "{compute:?}: {e}");
    }
    assert_eq!(micro.resolve(Compute::CpuF32).unwrap().model, ModelConfig::preset("micro").unwrap());
    // a lab the GPU takes and this CPU does not is refused by name, saying where
    let big = settings(json!({"preset": "micro", "batch": 32, "micro_batch": 8, "seq_len": 128}));
    assert!(big.resolve(Compute::Gpu).is_ok());
    let e = big.resolve(Compute::CpuF32).unwrap_err().to_string();
    assert!(e.starts_with("batch:") && e.contains("on the CPU"), "{e}");
    assert!(Compute::CpuF32.work_budget() > Compute::Cpu.work_budget());
    assert!(Compute::CpuF32.work_budget() < Compute::Gpu.work_budget());
}
