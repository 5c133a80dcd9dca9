//! The page's two tables as Rust reads them: the lab's settings
//! (`www/lab/settings.json`) and its scenarios (`www/lab/scenarios.json`).
//! `PageValues::lab_settings` turns the page's values into `LabSettings`
//! exactly as `www/settings.js` `labConfig` does, so that the CLI's
//! `scenario` command and the tests train what the page trains. Not here:
//! checking the tables' shape against the page (tests/settings.rs), or the
//! settings' rules (`settings`).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::settings::LabSettings;
use crate::model::ConfigError;

const SETTINGS_TABLE: &str = include_str!("../../www/lab/settings.json");
const SCENARIOS_TABLE: &str = include_str!("../../www/lab/scenarios.json");

/// One setting of the page, as far as the wasm settings go.
#[derive(Debug, Clone, Deserialize)]
pub struct PageSetting {
    pub name: String,
    pub kind: String,
    pub def: Option<Value>,
    /// Where the value goes in `LabSettings` (`optimizer.lr`); none for the
    /// page's own settings.
    pub path: Option<String>,
    /// What each choice sends instead of its name.
    pub settings: Option<Map<String, Value>>,
    /// The checkbox without which this setting sends `off`.
    pub when: Option<String>,
    pub off: Option<Value>,
    /// false for a setting whose control is not in the lab's form.
    pub form: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
struct SettingsTable {
    settings: Vec<PageSetting>,
}

/// The page's values by setting name, as its form holds them.
pub type PageValues = Map<String, Value>;

/// Every setting the page has, in its form's order.
pub fn page_settings() -> Vec<PageSetting> {
    serde_json::from_str::<SettingsTable>(SETTINGS_TABLE)
        .expect("www/lab/settings.json parses (tests/settings.rs)")
        .settings
}

/// The page's values before anything is chosen: every default, with the
/// smallest preset and the first shipped corpus (which the page takes from
/// the module's lists).
pub fn page_defaults() -> PageValues {
    let mut values: PageValues = page_settings().into_iter().filter_map(|s| Some((s.name, s.def?))).collect();
    values.insert("preset".into(), json!(crate::model::ModelConfig::PRESETS[0].0));
    values.insert("corpus".into(), json!(crate::data::CORPORA[0].name));
    values
}

/// What the page sends the wasm API for `values` (www/settings.js
/// labConfig): each value at its setting's path, a checkbox as true or
/// false, a choice through its `settings` map, a setting switched off by its
/// `when` checkbox as its `off` value.
pub fn sent_settings(values: &PageValues) -> Value {
    let mut sent = json!({});
    for s in page_settings() {
        let (Some(path), Some(value)) = (&s.path, values.get(&s.name)) else { continue };
        let value = match (&s.when, s.kind.as_str(), &s.settings) {
            (Some(switch), ..) if values.get(switch) != Some(&json!(1)) => s.off.clone().unwrap_or(Value::Null),
            (_, "checkbox", _) => json!(value == &json!(1)),
            (_, _, Some(map)) => value.as_str().and_then(|v| map.get(v)).cloned().unwrap_or(Value::Null),
            _ => value.clone(),
        };
        let mut node = &mut sent;
        for key in path.split('.') {
            node = node.as_object_mut().expect("paths nest objects").entry(key).or_insert(json!({}));
        }
        *node = value;
    }
    sent
}

/// The `LabSettings` the page builds from `values`.
pub fn lab_settings(values: &PageValues) -> Result<LabSettings, ConfigError> {
    LabSettings::from_json(sent_settings(values))
}

/// Checks named otherwise than the setting they check, and that setting's
/// path: the optimizer's check of `optimizer.lr` says `learning_rate`, of a
/// cosine schedule's `min_ratio` says `min_lr_ratio`, and a model's
/// `block_size` past its bound is the context `seq_len` asked for (which
/// grows it). tests/settings.rs fuzzes that every refusal's name is a path.
const CHECKED_AS: [(&str, &str); 3] =
    [("learning_rate", "optimizer.lr"), ("min_lr_ratio", "optimizer.schedule.min_ratio"), ("block_size", "seq_len")];

/// The wasm API's path of the setting a refusal calls `field`: `field`
/// itself for a field of `LabSettings`, `optimizer.field` for one of the
/// optimizer's, the setting a check of another name is about
/// (`CHECKED_AS`); None for a name that is no setting (`run`, `steps`).
pub fn api_path(field: &str) -> Option<String> {
    use crate::strict::fields_of;
    if let Some((_, path)) = CHECKED_AS.iter().find(|(check, _)| *check == field) {
        return Some(path.to_string());
    }
    if fields_of::<LabSettings>().contains(&field) {
        return Some(field.to_string());
    }
    fields_of::<crate::optim::OptimizerConfig>().contains(&field).then(|| format!("optimizer.{field}"))
}

/// How a refusal names the setting it calls `field`, for the reader: as the
/// wasm API spells it, with the page's name for it (its URL parameter and
/// element attribute, www/lab/settings.json) in brackets where that differs:
/// "optimizer.lr (lr)", "seq_len (ctx)", "micro_batch (micro)", "batch".
/// Several ("batch × seq_len") are named one by one; a name that is no
/// setting stays as it is.
pub fn reader_name(field: &str) -> String {
    let settings = page_settings();
    let one = |name: &str| -> String {
        let Some(path) = api_path(name) else { return name.to_string() };
        // the setting at the path, or the one holding it (optimizer.schedule for its min_ratio)
        let page = settings
            .iter()
            .filter_map(|s| s.path.as_deref().map(|p| (p, &s.name)))
            .filter(|(p, _)| path == *p || path.starts_with(&format!("{p}.")))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, name)| name);
        match page {
            Some(page) if *page != path => format!("{path} ({page})"),
            _ => path,
        }
    };
    field.split(" × ").map(one).collect::<Vec<_>>().join(" × ")
}

/// `e` in words with its field named for the reader (`reader_name`): what
/// the wasm API says when it refuses settings, so the page shows the names
/// its reader sees ("optimizer.lr (lr) must be at most 100, got 1e308").
pub fn for_reader(e: &ConfigError) -> String {
    let message = e.to_string();
    match e.field() {
        Some(field) if message.starts_with(field) => format!("{}{}", reader_name(field), &message[field.len()..]),
        _ => message,
    }
}

/// What a scenario claims for as long as a reader watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Claim {
    /// Naive leaves the full batch; corrected stays within rounding of it.
    NaiveDrifts,
    /// Every strategy stays within rounding of the full batch.
    AllAgree,
}

/// Where a scenario's weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// The shipped base model (`data/base/`), adapters training on it.
    Base,
    /// A fresh init from the seed.
    Fresh,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub label: String,
    pub summary: String,
    pub claim: Claim,
    pub start: Start,
    /// Steps the claim was measured to hold for.
    pub horizon: u64,
    /// The settings it sets, by page name; the rest keep their defaults.
    pub settings: PageValues,
    /// The settings whose controls stand beside the page's charts while it
    /// is chosen (`text`: the pasted text); the rest fold under "Advanced".
    pub controls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ScenariosTable {
    scenarios: Vec<Scenario>,
}

/// Every scenario, the page's default first.
pub fn scenarios() -> Vec<Scenario> {
    serde_json::from_str::<ScenariosTable>(SCENARIOS_TABLE)
        .expect("www/lab/scenarios.json parses (lab::page tests)")
        .scenarios
}

impl Scenario {
    /// A scenario by name, or an error listing them.
    pub fn named(name: &str) -> Result<Scenario, ConfigError> {
        let all = scenarios();
        all.iter().find(|s| s.name == name).cloned().ok_or_else(|| ConfigError::Invalid {
            field: "scenario",
            reason: format!(
                "unknown scenario {:?}; choose {}",
                name.chars().take(40).collect::<String>(),
                all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// The page's values under this scenario: the defaults, its settings over them.
    pub fn values(&self) -> PageValues {
        let mut values = page_defaults();
        for (k, v) in &self.settings {
            values.insert(k.clone(), v.clone());
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::Backend;

    #[test]
    fn every_scenario_names_real_settings_and_builds_a_lab() {
        let names: Vec<String> = page_settings().into_iter().map(|s| s.name).collect();
        let all = scenarios();
        assert!(all.len() >= 4);
        assert_eq!(all[0].name, "fine-tuning", "the page's default comes first");
        for s in &all {
            for k in s.settings.keys() {
                assert!(names.contains(k), "{}: {k} is no setting of the page", s.name);
            }
            let in_form: Vec<String> =
                page_settings().into_iter().filter(|p| p.form != Some(false)).map(|p| p.name).collect();
            assert!(
                !s.controls.is_empty() && s.controls.len() <= 4,
                "{}: two or three controls beside the charts",
                s.name
            );
            for k in &s.controls {
                assert!(k == "text" || in_form.contains(k), "{}: {k} is no control of the page's form", s.name);
            }
            let settings = lab_settings(&s.values()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            for backend in [Backend::Cpu, Backend::Reference] {
                settings.resolve(backend).unwrap_or_else(|e| panic!("{} on {backend}: {e}", s.name));
            }
        }
        assert!(Scenario::named("nope").unwrap_err().to_string().contains("fine-tuning"));
    }

    #[test]
    fn refusals_name_settings_as_the_api_and_the_page_spell_them() {
        use crate::lab::settings::LabSettings;
        let refuse = |v: Value, backend| for_reader(&LabSettings::from_json(v).unwrap().resolve(backend).unwrap_err());
        assert_eq!(
            refuse(json!({"optimizer": {"lr": 1e308}}), Backend::Cpu),
            "optimizer.lr (lr) must be at most 100, got 1e308"
        );
        assert_eq!(refuse(json!({"seq_len": 5000}), Backend::Cpu), "seq_len (ctx) must be at most 4096, got 5000");
        let e = refuse(json!({"batch": 3, "micro_batch": 2}), Backend::Cpu);
        assert_eq!(e, "micro_batch (micro): 2 does not divide the batch of 3");
        let e = refuse(
            json!({"optimizer": {"schedule": {"kind": "cosine", "warmup": 1, "total": 9, "min_ratio": 2}}}),
            Backend::Cpu,
        );
        assert!(e.starts_with("optimizer.schedule.min_ratio (sched) must be at most 1"), "{e}");
        let e = refuse(json!({"optimizer": {"weight_decay": -1}}), Backend::Cpu);
        assert!(e.starts_with("optimizer.weight_decay (wd) must be at least 0"), "{e}");
        // a name the page has too, and one it has not, stay as they are
        assert!(refuse(json!({"batch": 5000}), Backend::Cpu).starts_with("batch: must be between 1 and 4096"));
        assert_eq!(reader_name("kind"), "optimizer.kind (opt)");
        assert_eq!(reader_name("eps"), "optimizer.eps");
        assert_eq!(reader_name("batch × seq_len"), "batch × seq_len (ctx)");
        assert_eq!(reader_name("run"), "run");
    }
}
