//! The one validation layer for what enters from JavaScript
//! (`lab::settings`), fuzzed: random and hostile settings never panic, every
//! refusal names a field, every setting drawn from the documented ranges is
//! accepted, and no accepted lab asks for more work per step than the budget.
//! And the page's table of settings (www/lab/settings.json), which the form,
//! the URL and the wasm settings are made from, against `LabSettings`: every
//! path a real field, the page's defaults the library's where they should
//! agree, and every value the page offers a lab the CPU takes.
#![cfg(not(target_arch = "wasm32"))]

use gradlab::gpu::plan::{webgpu_limits, RunSizes};
use gradlab::lab::page::{api_path, for_reader, page_defaults, sent_settings};
use gradlab::lab::settings::{
    run_index, steps_per_call, work_per_step, Backend, LabSettings, CPU_WORK_BUDGET, GPU_MEMORY_BUDGET,
    GPU_WORK_BUDGET, MAX_STEPS_PER_CALL, REFERENCE_WORK_BUDGET,
};
use gradlab::model::ConfigError;
use gradlab::model::ModelConfig;
use gradlab::optim::OptimizerConfig;
use gradlab::strict::fields_of;
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Every name a refusal may start with: the settings' fields and the
/// optimizer's, and the names the checks give what they check.
fn named(e: &str) -> bool {
    const CHECKS: &[&str] = &["settings", "block_size", "runs", "learning_rate", "min_lr_ratio", "unknown preset"];
    let fields = fields_of::<LabSettings>().iter().chain(fields_of::<OptimizerConfig>());
    CHECKS.iter().chain(fields).any(|f| e.starts_with(f))
}

/// What the page shows for a refusal names the settings as the API spells
/// them (`lab::page::api_path`), with the page's name where it differs:
/// every name a refusal carries is a setting, or one of the few that are
/// not (the settings object as a whole, the runs, the backend).
fn named_for_the_reader(e: &ConfigError) -> Result<(), String> {
    let shown = for_reader(e);
    let Some(field) = e.field() else { return Ok(()) };
    for part in field.split(" × ") {
        if !["settings", "runs", "backend"].contains(&part) && api_path(part).is_none() {
            return Err(format!("{part} is no setting of the wasm API: {shown}"));
        }
    }
    let internal = ["learning_rate", "min_lr_ratio", "block_size"];
    match internal.iter().find(|name| shown.starts_with(*name)) {
        Some(name) => Err(format!("an internal name, {name}: {shown}")),
        None => Ok(()),
    }
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
        prop::sample::select(fields_of::<LabSettings>()).prop_map(String::from),
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
            .and_then(|s| s.resolve(Backend::Gpu).map(|c| (s, c)));
        match result {
            Ok((settings, config)) => {
                prop_assert!(work_per_step(&config) <= GPU_WORK_BUDGET);
                // what the GPU accepts, the CPU fallback (nano) either accepts within its budget or refuses by name
                match settings.resolve(Backend::Reference) {
                    Ok(cpu) => prop_assert!(work_per_step(&cpu) <= REFERENCE_WORK_BUDGET),
                    Err(e) => prop_assert!(named(&e.to_string()), "unnamed refusal: {e}"),
                }
            }
            Err(e) => {
                prop_assert!(named(&e.to_string()), "unnamed refusal of {object:?}: {e}");
                let reader = named_for_the_reader(&e);
                prop_assert!(reader.is_ok(), "{}", reader.unwrap_err());
            }
        }
    }

    /// Labs drawn near the GPU's limits: long contexts, larger batches and
    /// every preset, checked against WebGPU's default limits as the settings
    /// check does. An accepted lab has every buffer within them and its
    /// runs within the memory budget, and is refused once its largest buffer
    /// is a word past the limit; a refused one names the settings, and the
    /// CPU backends never refuse it for a GPU's limits (a lab past them that
    /// fits the CPU's work budget, such as `micro` at T = 2897 with one run,
    /// is the CPU's).
    #[test]
    fn labs_near_the_gpus_limits_are_refused_by_name_or_fit(
        preset in prop::sample::select(vec!["nano", "micro", "small"]),
        batch in prop::sample::select(vec![1usize, 2, 4, 8, 16, 32, 64]),
        micro_pow in 0u32..4,
        seq_len in prop_oneof![512usize..=4096, Just(2048), Just(2896), Just(4096), 8usize..=256],
        sweep in any::<bool>(),
        lora_rank in prop::sample::select(vec![0usize, 4]),
    ) {
        let micro_batch = (1usize << micro_pow).min(batch);
        let v = json!({"preset": preset, "batch": batch, "micro_batch": micro_batch, "seq_len": seq_len,
            "sweep": sweep, "lora_rank": lora_rank});
        let settings = LabSettings::from_json(v.clone()).unwrap();
        let defaults = webgpu_limits();
        match settings.resolve(Backend::Gpu) {
            Ok(config) => {
                let plans: Vec<RunSizes> = config.run_configs().iter().map(|r| RunSizes::new(r).unwrap()).collect();
                let largest = plans.iter().flat_map(|p| p.buffers()).map(|p| p.binding as u64 * 4).max().unwrap();
                prop_assert!(largest <= defaults.max_storage_buffer_binding_size, "{v}: {largest}");
                let total: u64 = plans.iter().map(RunSizes::total_bytes).sum();
                prop_assert!(total <= GPU_MEMORY_BUDGET, "{v}: {total}");
                let tighter = wgpu::Limits { max_storage_buffer_binding_size: largest - 4, ..defaults };
                let e = settings.resolve_on(Backend::Gpu, &tighter).unwrap_err();
                prop_assert!(matches!(e, ConfigError::DeviceLimit { .. }), "{v}: {e}");
                prop_assert!(e.to_string().contains("(maxStorageBufferBindingSize)"), "{v}: {e}");
            }
            Err(e) => {
                prop_assert!(named(&e.to_string()), "{v}: unnamed refusal {e}");
                let reader = named_for_the_reader(&e);
                prop_assert!(reader.is_ok(), "{}", reader.unwrap_err());
                if let ConfigError::DeviceLimit { .. } = e {
                    let said = e.to_string();
                    prop_assert!(said.contains("this GPU allows") || said.contains("a lab may take on the GPU"), "{said}");
                }
                // the CPU backends are held to their work budgets, never to a GPU's limits
                for cpu in [Backend::Cpu, Backend::Reference] {
                    if let Err(e) = settings.resolve(cpu) {
                        prop_assert!(!matches!(e, ConfigError::DeviceLimit { .. }), "{v} on {cpu}: {e}");
                    }
                }
            }
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
        let config = parsed.unwrap().resolve(Backend::Gpu);
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
    let refuse = |v: Value| LabSettings::from_json(v).and_then(|s| s.resolve(Backend::Gpu)).unwrap_err().to_string();
    // a key that is no setting, at any level: named, with the nearest setting or all of them
    assert_eq!(
        refuse(json!({"bogus": 1})),
        "settings: bogus is not a lab setting (the lab settings are: preset, batch, micro_batch, spread, seq_len, \
         optimizer, seed, sweep, corpus, text, packing, mask_prompt, ranks, lora_rank)"
    );
    assert_eq!(
        refuse(json!({"microbatch": 2})),
        "settings: microbatch is not a lab setting; did you mean micro_batch?"
    );
    assert_eq!(refuse(json!({"seqlen": 16})), "settings: seqlen is not a lab setting; did you mean seq_len?");
    assert_eq!(
        refuse(json!({"optimizer": {"speed": 2}})),
        "settings: optimizer.speed is not a lab setting (the lab settings in optimizer are: kind, lr, momentum, \
         beta1, beta2, eps, weight_decay, max_grad_norm, schedule)"
    );
    let e = refuse(json!({"optimizer": {"schedule": {"kind": "warmup", "warmup": 1, "warmpu": 2}}}));
    assert!(
        e.contains("optimizer.schedule.warmpu is not a lab setting; did you mean optimizer.schedule.warmup?"),
        "{e}"
    );
    // run indices as JavaScript gives them: -1 said as -1, NaN and 1.5 refused
    let run = |x: f64| run_index(x, 3).map_err(|e| e.to_string());
    assert_eq!(run(-1.0).unwrap_err(), "run: -1 is not a run (this lab has runs 0 to 2)");
    assert_eq!(run(3.0).unwrap_err(), "run: 3 is not a run (this lab has runs 0 to 2)");
    assert_eq!(run(f64::NAN).unwrap_err(), "run: must be a whole number, got NaN (this lab has runs 0 to 2)");
    assert_eq!(run(1.5).unwrap_err(), "run: must be a whole number, got 1.5 (this lab has runs 0 to 2)");
    assert_eq!(run(4294967295.0).unwrap_err(), "run: 4294967295 is not a run (this lab has runs 0 to 2)");
    assert_eq!((run(0.0), run(2.0)), (Ok(0), Ok(2)));
    let e = refuse(json!({"batch": "8"}));
    assert!(e.contains("batch") && e.contains("invalid type"), "{e}");
    let e = refuse(json!({"optimizer": {"lr": 1e308}}));
    assert_eq!(e, "learning_rate must be at most 100, got 1e308");
    // four thousand sequences of the CPU reference would block the tab
    let e = LabSettings::from_json(json!({"batch": 4096, "micro_batch": 4096}))
        .unwrap()
        .resolve(Backend::Reference)
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
    assert_eq!(largest.resolve(Backend::Gpu).unwrap().seed, (1 << 53) - 1);
    // missing fields default
    let defaults = LabSettings::from_json(json!({})).unwrap();
    assert_eq!(defaults, LabSettings::default());
    assert!(defaults.resolve(Backend::Gpu).is_ok() && defaults.resolve(Backend::Reference).is_ok());
}

#[test]
fn the_f32_cpu_backend_takes_any_preset_within_its_own_budget() {
    let settings = |v: Value| LabSettings::from_json(v).unwrap();
    // the f64 reference always builds nano; the f32 backend builds the preset asked for
    let micro = settings(json!({"preset": "micro"}));
    assert_eq!(micro.resolve(Backend::Reference).unwrap().model, ModelConfig::nano());
    // a preset that does not exist is refused on every backend, the reference's too
    for compute in [Backend::Gpu, Backend::Cpu, Backend::Reference] {
        let e = settings(json!({"preset": "0x10"})).resolve(compute).unwrap_err().to_string();
        assert!(e.starts_with("unknown preset \"0x10\""), "{compute:?}: {e}");
    }
    assert_eq!(micro.resolve(Backend::Cpu).unwrap().model, ModelConfig::preset("micro").unwrap());
    // a lab the GPU takes and this CPU does not is refused by name, saying where
    let big = settings(json!({"preset": "micro", "batch": 32, "micro_batch": 8, "seq_len": 128}));
    assert!(big.resolve(Backend::Gpu).is_ok());
    let e = big.resolve(Backend::Cpu).unwrap_err().to_string();
    assert!(e.starts_with("batch:") && e.contains("on the CPU"), "{e}");
    assert!(Backend::Cpu.work_budget() > Backend::Reference.work_budget());
    assert!(Backend::Cpu.work_budget() < Backend::Gpu.work_budget());
}

/// The page's table of settings (www/lab/settings.json; its `about` says
/// what each property means).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[allow(dead_code)]
    about: Vec<String>,
    settings: Vec<Setting>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Setting {
    name: String,
    kind: Kind,
    label: String,
    testid: String,
    def: Option<Value>,
    min: Option<f64>,
    max: Option<f64>,
    step: Option<f64>,
    #[serde(default)]
    int: bool,
    choices: Option<Vec<Value>>,
    hint: Option<Value>,
    path: Option<String>,
    settings: Option<Map<String, Value>>,
    when: Option<String>,
    off: Option<Value>,
    form: Option<bool>,
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Choice,
    Number,
    Range,
    LogSlider,
    Checkbox,
}

fn table() -> Table {
    serde_json::from_str(include_str!("../www/lab/settings.json")).expect("www/lab/settings.json")
}

impl Table {
    fn get(&self, name: &str) -> &Setting {
        self.settings.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no setting {name}"))
    }
}

#[test]
fn the_page_table_is_well_formed_and_every_path_is_a_settings_field() {
    let table = table();
    let mut names: Vec<_> = table.settings.iter().map(|s| s.name.as_str()).collect();
    let mut ids: Vec<_> = table.settings.iter().map(|s| s.testid.as_str()).collect();
    // the names links, element attributes and saved states hold
    for kept in [
        "lr",
        "batch",
        "micro",
        "spread",
        "opt",
        "momentum",
        "beta1",
        "beta2",
        "wd",
        "clip",
        "sched",
        "preset",
        "ctx",
        "seed",
        "sweepsteps",
        "corpus",
        "packing",
        "mask",
        "ranks",
        "lora",
        "lorarank",
        "precision",
        "device",
        "scenario",
    ] {
        assert!(names.contains(&kept), "the setting {kept} is gone: links and saved states name it");
    }
    names.sort_unstable();
    names.dedup();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(names.len(), table.settings.len(), "two settings share a name");
    assert_eq!(ids.len(), table.settings.len(), "two settings share a test id");
    for s in &table.settings {
        let n = &s.name;
        assert!(!s.label.is_empty() && !s.testid.is_empty(), "{n}");
        // the preset and the corpus take their choices and default from the wasm module
        let from_wasm = ["preset", "corpus"].contains(&n.as_str());
        assert_eq!(s.def.is_none(), from_wasm, "{n}: a default, unless the wasm module gives it");
        // the scenario's choices are the scenarios table's names (settings.js labFields)
        let from_scenarios = n == "scenario";
        if from_scenarios {
            let def = s.def.as_ref().and_then(Value::as_str).expect("scenario: a default");
            assert!(gradlab::lab::page::Scenario::named(def).is_ok(), "scenario: the default {def} is no scenario");
            assert_eq!(def, gradlab::lab::page::scenarios()[0].name, "scenario: the default is the table's first");
        }
        match s.kind {
            Kind::Choice | Kind::Checkbox => {
                let choices = s.choices.as_ref().map_or(&[][..], Vec::as_slice);
                assert_eq!(choices.is_empty(), from_wasm || from_scenarios, "{n}: choices");
                assert!(s.min.is_none() && s.max.is_none() && s.step.is_none() && !s.int, "{n}: a choice has no range");
                if let Some(def) = s.def.as_ref().filter(|_| !from_scenarios) {
                    assert!(choices.contains(def), "{n}: the default {def} is not a choice");
                }
                if s.kind == Kind::Checkbox {
                    assert_eq!(choices, [json!(0), json!(1)], "{n}: a checkbox is 0 or 1");
                }
                if let Some(map) = &s.settings {
                    let keys: Vec<_> = map.keys().map(|k| json!(k)).collect();
                    assert_eq!(keys.len(), choices.len(), "{n}: one setting a choice");
                    assert!(choices.iter().all(|c| keys.contains(c)), "{n}: one setting a choice");
                }
            }
            Kind::Number | Kind::Range | Kind::LogSlider => {
                assert!(s.choices.is_none() && s.settings.is_none(), "{n}: a number has a range, no choices");
                let (min, def) = (s.min.expect("min"), s.def.as_ref().and_then(Value::as_f64).expect("def"));
                // the context's maximum is the longest block size of the presets (settings.js labFields)
                let max = s.max.unwrap_or_else(|| longest_block_size() as f64);
                assert!(min <= def && def <= max && s.step.is_some_and(|x| x > 0.0), "{n}: range and step");
                if s.kind == Kind::LogSlider {
                    assert!(min > 0.0, "{n}: a log slider starts above 0");
                }
                if s.int {
                    assert!([min, def, max].iter().all(|x| x.fract() == 0.0), "{n}: whole numbers");
                }
            }
        }
        // a hint is one text, or one a choice
        match &s.hint {
            None | Some(Value::String(_)) => {}
            Some(Value::Object(hints)) => {
                let choices = s.choices.as_ref().expect("hints for choices");
                assert!(
                    choices.iter().all(|c| c.as_str().is_some_and(|c| hints.contains_key(c))),
                    "{n}: a hint for every choice"
                );
                assert_eq!(hints.len(), choices.len(), "{n}: a hint for every choice, and only those");
            }
            Some(other) => panic!("{n}: a hint is a text or one a choice, not {other}"),
        }
        if let Some(switch) = &s.when {
            assert_eq!(table.get(switch).kind, Kind::Checkbox, "{n}: `when` names a checkbox");
            assert!(s.off.is_some(), "{n}: `when` needs the value sent while off");
        }
        assert!(s.form.is_none_or(|f| !f), "{n}: `form` is only ever false");
        // a path is a field of LabSettings, or of the optimizer's settings within it
        if let Some(path) = &s.path {
            let known = match path.split_once('.') {
                None => fields_of::<LabSettings>().contains(&path.as_str()),
                Some(("optimizer", field)) => fields_of::<OptimizerConfig>().contains(&field),
                Some(_) => false,
            };
            assert!(known, "{n}: {path} is no field of LabSettings");
        }
    }
}

fn longest_block_size() -> usize {
    ModelConfig::PRESETS.iter().map(|(_, make)| make().block_size).max().unwrap()
}

#[test]
fn the_page_defaults_are_the_library_defaults_but_three() {
    let sent = sent_settings(&page_defaults());
    let page = LabSettings::from_json(sent.clone()).unwrap_or_else(|e| panic!("{sent}: {e}"));
    // where the page chooses otherwise, and why (www/lab/settings.json notes):
    // a faster learning rate that moves visibly on a slow adapter, a short
    // context that steps fast, and the prompt mask that makes the strategies differ
    let mut expected = LabSettings::default();
    expected.optimizer.lr = 0.01;
    expected.seq_len = 32;
    expected.mask_prompt = true;
    assert_eq!(page, expected);
    for compute in [Backend::Gpu, Backend::Cpu, Backend::Reference] {
        assert!(page.resolve(compute).is_ok(), "{compute:?}");
    }
}

/// Every choice the page offers and both ends of every number, one setting
/// at a time from the page's defaults, are a lab both CPU backends (and the
/// GPU) take. Where a value only combines with some others, those are set
/// with it: a micro-batch b with the largest batch B (b divides B), ranks
/// with b = 1 (R divides G = B / b), packing without the prompt mask, and a
/// LoRA rank with LoRA on. Settings without a path are the page's own.
#[test]
fn every_value_the_page_offers_is_a_lab_the_cpu_takes() {
    let table = table();
    let largest = |name: &str| {
        table
            .get(name)
            .choices
            .as_ref()
            .unwrap()
            .iter()
            .max_by(|a, b| a.as_f64().partial_cmp(&b.as_f64()).unwrap())
            .unwrap()
            .clone()
    };
    let presets: Vec<Value> = ModelConfig::PRESETS.iter().map(|(name, _)| json!(name)).collect();
    let corpora: Vec<Value> = gradlab::data::CORPORA.iter().map(|c| json!(c.name)).collect();
    let mut tried = 0;
    for s in table.settings.iter().filter(|s| s.path.is_some()) {
        let values: Vec<Value> = match (s.name.as_str(), &s.choices) {
            ("preset", _) => presets.clone(),
            ("corpus", _) => corpora.clone(),
            (_, Some(choices)) => choices.clone(),
            // a whole number as the page's numbers arrive through serde-wasm-bindgen: an integer
            (_, None) => [s.min.unwrap(), s.max.unwrap_or(longest_block_size() as f64)]
                .map(|x| if s.int { json!(x as u64) } else { json!(x) })
                .to_vec(),
        };
        for value in values {
            let mut page = page_defaults();
            match s.name.as_str() {
                "micro" => page.insert("batch".into(), largest("batch")),
                "ranks" => page.insert("micro".into(), json!(1)),
                "packing" => page.insert("mask".into(), json!(0)),
                "lorarank" => page.insert("lora".into(), json!(1)),
                _ => None,
            };
            page.insert(s.name.clone(), value.clone());
            let sent = sent_settings(&page);
            let settings =
                LabSettings::from_json(sent.clone()).unwrap_or_else(|e| panic!("{}={value}: {sent}: {e}", s.name));
            for compute in [Backend::Cpu, Backend::Reference, Backend::Gpu] {
                let lab = settings.resolve(compute);
                assert!(lab.is_ok(), "{}={value} on {compute:?}: {}", s.name, lab.unwrap_err());
            }
            tried += 1;
        }
    }
    assert!(tried > 40, "{tried}");
}

/// What the comments on the budgets (src/lab/settings.rs) say each admits
/// and refuses, with the figures they give.
#[test]
fn the_work_budgets_admit_what_their_comments_say() {
    let work = |v: Value, compute: Backend| {
        let c = LabSettings::from_json(v.clone()).unwrap().resolve(compute);
        c.map(|c| work_per_step(&c)).map_err(|e| e.to_string())
    };
    let close = |x: f64, figure: f64| (x / figure - 1.0).abs() < 0.05;
    // the GPU: the G sweep of `small` at B = 32, T = 256 (11 runs)
    let sweep = |ranks: usize| json!({"preset": "small", "batch": 32, "seq_len": 256, "sweep": true, "ranks": ranks});
    assert!(close(work(sweep(1), Backend::Gpu).unwrap(), 1.5e12));
    // with 2 ranks, a local run beside each naive one: 16
    let e = work(sweep(2), Backend::Gpu).unwrap_err();
    assert!(e.contains("16 runs") && e.contains("about 2.2e12 operations"), "{e}");
    // the f64 reference (nano): three runs at B = 32, T = 128; not at T = 256
    let lab = |batch: usize, seq_len: usize| json!({"batch": batch, "micro_batch": 2, "seq_len": seq_len});
    assert!(close(work(lab(32, 128), Backend::Reference).unwrap(), 9.2e9));
    let e = work(lab(32, 256), Backend::Reference).unwrap_err();
    assert!(e.contains("about 2.0e10 operations"), "{e}");
    // the page's default B = 8 with the longest context
    assert!(close(work(lab(8, 256), Backend::Reference).unwrap(), 4.9e9));
    // the f32 CPU backend: three runs of `micro` at B = 16, T = 64; not at B = 32
    let micro = |batch: usize| json!({"preset": "micro", "batch": batch, "micro_batch": 2, "seq_len": 64});
    assert!(close(work(micro(16), Backend::Cpu).unwrap(), 1.6e10));
    let e = work(micro(32), Backend::Cpu).unwrap_err();
    assert!(e.contains("about 3.1e10 operations"), "{e}");
    const { assert!(REFERENCE_WORK_BUDGET < CPU_WORK_BUDGET && CPU_WORK_BUDGET < GPU_WORK_BUDGET) };
}
