//! Browser tests: the quick check suite (`checks::quick_suite`, the same
//! comparisons and tolerances `gradlab check` uses), every family of
//! `checks::FAMILIES` in turn, on the browser's WebGPU (SwiftShader in
//! headless Chromium on CI) against the CPU reference; and a lab past the
//! adapter's limits refused by name before it reaches the GPU.
//! Run by scripts/test.sh through wasm-bindgen-test-runner and wasm-pack.
#![cfg(target_arch = "wasm32")]

use gradlab::checks::{self, Seed};
use gradlab::gpu::GpuContext;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn adapter_is_real_webgpu() {
    let ctx = GpuContext::new().await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    checks::log(&format!("adapter: {}", ctx.adapter));
    assert_eq!(ctx.adapter.backend, "BrowserWebGpu", "expected the browser's WebGPU, got {}", ctx.adapter);
}

/// Every family of the registry over the quick suite, all of them even after
/// one fails; fails naming each family with a comparison above its tolerance
/// (or an error) and the seed: `gradlab check --seed` draws the same inputs
/// natively (it runs the same quick suite with the same seeds).
#[wasm_bindgen_test]
async fn every_family_matches_cpu() {
    let ctx = GpuContext::new().await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    let seed = Seed::fresh();
    let suite = checks::quick_suite();
    let mut failed = Vec::new();
    for family in checks::FAMILIES {
        let lines = match checks::run_family(&ctx, &suite, family.name, seed.0).await {
            Ok(lines) => lines,
            Err(e) => vec![format!("error: {e}")],
        };
        failed.extend(lines.into_iter().map(|line| format!("{}: {line}", family.name)));
    }
    assert!(
        failed.is_empty(),
        "above tolerance with seed {0} (gradlab check --seed {0} replays it):\n{1}",
        seed.0,
        failed.join("\n")
    );
}

/// A lab's state crosses into JavaScript (`WebLab.state`) and back
/// (`restore`) bit for bit, and so through a file (the full build's
/// `encodeState` / `decodeState`): vectors whose every value is an f32 as
/// Float32Arrays, the others as Float64Arrays; NaN, −0.0, infinities and f64
/// subnormals kept; the sampler's position with all 64 bits.
#[wasm_bindgen_test]
fn a_lab_state_crosses_into_javascript_and_back_exactly() {
    use gradlab::lab::{LabConfig, LabState};
    use gradlab::model::ModelConfig;
    use gradlab::rng::Rng;
    use gradlab::train::RunState;
    use gradlab::web::state::{from_object, to_object};
    use wasm_bindgen::JsCast;

    let seed = Seed::fresh();
    let mut rng = Rng::new(seed.0);
    let odd = [f64::NAN, -0.0, f64::INFINITY, f64::NEG_INFINITY, 1e-310, f64::MAX, 0.1];
    // `wide`: values no f32 holds, besides the odd ones; else f32 values only
    let mut vector = |n: usize, wide: bool| -> Vec<f64> {
        (0..n)
            .map(|i| match (wide, i % 5) {
                (true, 0) => odd[rng.below(odd.len())],
                (true, _) => rng.normal(),
                (false, 0) => [-0.0, f64::NAN, f64::INFINITY][rng.below(3)],
                (false, _) => rng.normal() as f32 as f64,
            })
            .collect()
    };
    let config = LabConfig::sweep(ModelConfig::nano(), 8, 1.0, seed.0);
    let runs = config.all_runs().len();
    let state = LabState {
        steps: (1 << 53) - 1,
        sampler: u64::MAX - seed.0 % 1000,
        runs: (0..runs)
            .map(|i| RunState {
                weights: vector(37 + i, i % 2 == 1),
                adapters: (i % 3 == 0).then(|| vector(11, true)),
                moment1: vector(13 + 2 * i, false),
                moment2: vector(13 + 2 * i, true),
                step: 1000 + i as u64,
            })
            .collect(),
        halted: (0..runs).map(|i| i % 2 == 0).collect(),
        config,
    };
    let bits = |s: &LabState| -> Vec<Vec<u64>> {
        s.runs
            .iter()
            .flat_map(|r| [&r.weights, r.adapters.as_ref().unwrap_or(&r.weights), &r.moment1, &r.moment2])
            .map(|v| v.iter().map(|x| x.to_bits()).collect())
            .collect()
    };
    let same = |back: &LabState, how: &str| {
        assert_eq!((back.steps, back.sampler, &back.halted), (state.steps, state.sampler, &state.halted), "{how}");
        assert_eq!(back.config, state.config, "{how}");
        assert_eq!(
            back.runs.iter().map(|r| (r.step, r.adapters.is_some())).collect::<Vec<_>>(),
            state.runs.iter().map(|r| (r.step, r.adapters.is_some())).collect::<Vec<_>>(),
            "{how}"
        );
        assert_eq!(bits(back), bits(&state), "{how}: every value, bit for bit");
    };

    let object = to_object(&state).unwrap();
    let run = |i: u32, key: &str| {
        let runs = js_sys::Reflect::get(&object, &"runs".into()).unwrap();
        js_sys::Reflect::get(&js_sys::Reflect::get(&runs, &i.into()).unwrap(), &key.into()).unwrap()
    };
    assert!(run(0, "weights").is_instance_of::<js_sys::Float32Array>(), "f32 values only: a Float32Array");
    assert!(run(1, "weights").is_instance_of::<js_sys::Float64Array>(), "wider values: a Float64Array");
    assert!(run(0, "moment1").is_instance_of::<js_sys::Float32Array>());
    same(&from_object(&object).unwrap(), "state object");

    let file = gradlab::web::encode_state(object, "{\"page\": 1}".into(), Some(vec![7, 8, 9])).unwrap();
    let opened = gradlab::web::decode_state(&file.to_vec()).unwrap();
    let get = |key: &str| js_sys::Reflect::get(&opened, &key.into()).unwrap();
    assert_eq!(get("page").as_string().as_deref(), Some("{\"page\": 1}"));
    assert_eq!(get("twin").dyn_into::<js_sys::Uint8Array>().unwrap().to_vec(), vec![7, 8, 9]);
    same(&from_object(&get("state")).unwrap(), "through a file");
}

/// A lab past the adapter's own limits is refused by the settings check,
/// naming the settings and the limit, before anything reaches the GPU (it
/// once failed inside WebGPU: "[Invalid Buffer "att"] is invalid due to a
/// previous error"); the same settings the CPU takes where they fit its budget
/// are tests/web_api.rs's.
#[wasm_bindgen_test]
async fn a_lab_past_the_adapters_limits_is_refused_by_name() {
    use wasm_bindgen::JsCast;
    let settings = js_sys::JSON::parse(r#"{"seq_len": 4096}"#).unwrap();
    let e = gradlab::web::WebLab::create(settings, "webgpu".into(), None).await.err().expect("refused");
    let said = String::from(wasm_bindgen::JsValue::from(e).unchecked_into::<js_sys::Error>().message());
    // which limit comes first depends on the adapter: a buffer's size, or
    // (SwiftShader, whose buffers may be larger) the memory a lab may take
    assert!(said.starts_with("batch × seq_len (ctx): "), "{said}");
    let per_buffer = said.contains("this GPU allows") && said.contains("(max");
    assert!(per_buffer || said.contains("a lab may take on the GPU"), "{said}");
    assert!(!said.contains("Invalid Buffer"), "{said}");
}
