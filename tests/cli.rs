//! The command-line tool end to end: export-grads writes files an independent
//! implementation can check (here: the f64 CPU reference reads them back), and
//! bad input gets a message naming the problem and a failing exit code.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::process::Command;

use gradlab::checkpoint::{adapters_from_safetensors, from_safetensors};
use gradlab::cpu::CpuModel;
use gradlab::model::{AdapterLayout, LoraConfig, LoraTarget, ModelConfig, ParamLayout};
use gradlab::train::MicroBatch;

fn gradlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gradlab-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs `export-grads` with `extra` flags and checks every strategy's loss
/// and gradient against the f64 reference computed from the files alone,
/// with each strategy's scale written out here from docs/DESIGN.md §1.
///
/// With `lora`, the adapters (read back from `adapters.safetensors`) sit on
/// the frozen base and the gradients compared are the adapters'.
fn export_matches_the_reference(name: &str, extra: &[&str], expect: &[&str]) {
    export_matches(name, extra, expect, None, None)
}

/// `export_matches_the_reference` under `lora`; with `start`, the adapters
/// file `--adapters` gave (`adapters.safetensors` must hold it, and A's
/// gradients must not be zero), else their seeded init.
fn export_matches(name: &str, extra: &[&str], expect: &[&str], lora: Option<LoraConfig>, start: Option<&Path>) {
    let dir = tmp(name);
    let mut args = vec!["export-grads", dir.to_str().unwrap(), "--seed", "3"];
    args.extend_from_slice(extra);
    let out = gradlab(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config: ModelConfig = serde_json::from_slice(&read(&dir, "config.json")).unwrap();
    let layout = ParamLayout::new(&config);
    let weights = from_safetensors(&layout, &read(&dir, "model.safetensors")).unwrap();
    let batch: serde_json::Value = serde_json::from_slice(&read(&dir, "batch.json")).unwrap();
    let b = batch["micro_batch"].as_u64().unwrap() as usize;
    let ranks = batch["ranks"].as_u64().unwrap() as usize;
    let sequences: Vec<Vec<u32>> = serde_json::from_value(batch["sequences"].clone()).unwrap();
    let prompts: Vec<usize> = serde_json::from_value(batch["prompt_lengths"].clone()).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&read(&dir, "report.json")).unwrap();
    let reported: Vec<&String> = report["loss"].as_object().unwrap().keys().collect();
    assert_eq!(reported.len(), expect.len(), "strategies reported: {reported:?}");
    let t = sequences.iter().map(|s| s.len() - 1).max().unwrap();

    // f64 reference, from the files alone: per micro-batch sums and counts
    let mut cpu = CpuModel::new(layout.clone(), &weights);
    let adapters = lora.map(|lora| AdapterLayout::new(&layout, lora).unwrap());
    if let Some(a) = &adapters {
        let init = adapters_from_safetensors(a, &read(&dir, "adapters.safetensors")).unwrap();
        match start {
            Some(file) => {
                let given = adapters_from_safetensors(a, &std::fs::read(file).unwrap()).unwrap();
                assert_eq!(init, given, "the adapters start as the file has them");
            }
            None => assert_eq!(init, a.init(), "the adapters start at their seeded init"),
        }
        cpu = cpu.with_adapters(a.clone(), &init);
    }
    let micro: Vec<MicroBatch> =
        sequences.chunks(b).zip(prompts.chunks(b)).map(|(c, p)| MicroBatch::from_prompted(c, p, t).unwrap()).collect();
    let per_rank = micro.len() / ranks;
    let n: usize = micro.iter().map(MicroBatch::tokens).sum();
    let rank_tokens =
        |g: usize| micro[g / per_rank * per_rank..][..per_rank].iter().map(MicroBatch::tokens).sum::<usize>();
    for &strategy in expect {
        cpu.zero_grad();
        let mut loss = 0.0;
        for (g, mb) in micro.iter().enumerate() {
            let s: f64 = cpu.forward(&mb.inputs, &mb.targets, b, t).iter().sum();
            let scale = match strategy {
                "naive" => 1.0 / (micro.len() * mb.tokens()) as f64,
                "local" => 1.0 / (ranks * rank_tokens(g)) as f64,
                _ => 1.0 / n as f64,
            };
            loss += s * scale;
            cpu.backward(scale);
        }
        let reported = report["loss"][strategy].as_f64().unwrap();
        assert!((reported - loss).abs() < 1e-5 * loss, "{name} {strategy}: reported {reported}, reference {loss}");
        let file = read(&dir, &format!("grads_{strategy}.safetensors"));
        let (grads, reference) = match (&adapters, &cpu.lora) {
            (Some(a), Some(c)) => (adapters_from_safetensors(a, &file).unwrap(), &c.grads),
            _ => (from_safetensors(&layout, &file).unwrap(), &cpu.grads),
        };
        let (mut d, mut r) = (0.0, 0.0);
        for (x, y) in grads.iter().zip(reference) {
            d += (*x as f64 - y).powi(2);
            r += y * y;
        }
        let rel = (d / r).sqrt();
        eprintln!("{name} {strategy}: loss {loss:.6}, gradient rel error {rel:.2e}");
        assert!(rel < 1e-3, "{name} {strategy}: gradient differs from the reference by {rel:e}");
        if let (Some(a), Some(_)) = (&adapters, start) {
            // from B ≠ 0 every A has a gradient, and it matches too
            for l in &a.linears {
                let (ga, ra) = (&grads[l.a.range()], &reference[l.a.range()]);
                assert!(ga.iter().any(|&x| x != 0.0), "{name} {strategy}: {} has a zero gradient", l.a.name);
                let d: f64 = ga.iter().zip(ra).map(|(&x, y)| (x as f64 - y).powi(2)).sum();
                let r: f64 = ra.iter().map(|y| y * y).sum();
                assert!((d / r).sqrt() < 1e-3, "{name} {strategy}: {} differs by {:e}", l.a.name, (d / r).sqrt());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_grads_matches_the_f64_reference() {
    export_matches_the_reference("export", &["--micro-batch", "4"], &["full", "naive", "corrected"]);
}

#[test]
fn export_grads_of_masked_prompts_on_ranks_matches_the_f64_reference() {
    export_matches_the_reference(
        "export-modes",
        &["--micro-batch", "2", "--batch", "8", "--mask-prompt", "--ranks", "2", "--corpus", "devil"],
        &["full", "naive", "local", "corrected"],
    );
}

#[test]
fn export_grads_under_lora_writes_adapter_gradients_that_match_the_f64_reference() {
    let targets = LoraConfig::target_bits(&[LoraTarget::Attn, LoraTarget::FcProj]);
    let lora = LoraConfig { rank: 4, alpha: 8.0, targets, seed: 3 };
    export_matches(
        "export-lora",
        &["--micro-batch", "2", "--batch", "8", "--mask-prompt", "--lora", "4", "--lora-targets", "attn,fc_proj"],
        &["full", "naive", "corrected"],
        Some(lora),
        None,
    );
}

#[test]
fn pretrain_writes_a_base_and_train_adapts_the_shipped_one_with_lora() {
    let dir = tmp("pretrain");
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.safetensors");
    let out = gradlab(&["pretrain", "--ctx", "32", "--steps", "2", "--out", base.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let layout = ParamLayout::new(&ModelConfig { block_size: 32, ..ModelConfig::nano() });
    from_safetensors(&layout, &std::fs::read(&base).unwrap()).unwrap();
    // nano's own context is 64: a base of 32 positions is too short for it, and says so
    let out = gradlab(&["train", "--init", base.to_str().unwrap(), "--steps", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("context of 32 positions"), "{err}");
    // the shipped base (context 128, cropped to 64) adapted with LoRA starts where pretraining ended
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/data/base/nano-kjv.safetensors");
    let out = gradlab(&["train", "--init", shipped, "--lora", "2", "--steps", "3", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("LoRA r=2"), "{err}");
    let losses: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), 3);
    assert!(losses[0] < 3.0, "a pretrained base starts well below ln 256: {losses:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Column `name` of a CSV file, one value per row.
fn csv_column(text: &str, name: &str) -> Vec<String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines.map(|l| l.split(',').nth(at).unwrap().to_string()).collect()
}

#[test]
fn sweep_on_the_f32_cpu_backend_follows_the_f64_reference_under_a_cosine_schedule() {
    let run = |backend: &str| {
        let dir = tmp(&format!("sweep-{backend}"));
        let out = gradlab(&[
            "sweep",
            "--backend",
            backend,
            "--steps",
            "3",
            "--seeds",
            "2",
            "--schedule",
            "cosine",
            "--warmup",
            "1",
            "--eval-every",
            "0",
            "--val-sequences",
            "8",
            "--out",
            dir.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{backend}: {stderr}");
        let csv = String::from_utf8(read(&dir, "sweep.csv")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        (csv, stderr)
    };
    let ((f64_csv, quiet), (f32_csv, cpu_note)) = (run("reference"), run("cpu"));
    assert!(!quiet.contains("note:"), "{quiet}");
    // `cpu` named the f64 reference until 2026-12-07: a saved script is told
    assert!(cpu_note.contains("before 2026-12-07 it named the f64 reference"), "{cpu_note}");
    // the old spelling of the f32 backend still runs it, and says so
    let (old_csv, old_note) = run("cpu-f32");
    assert!(old_note.contains("now spelled --backend cpu"), "{old_note}");
    assert_eq!(old_csv, f32_csv, "cpu-f32 is the f32 CPU backend");
    let numbers =
        |csv: &str, col: &str| -> Vec<f64> { csv_column(csv, col).iter().map(|v| v.parse().unwrap()).collect() };
    for col in ["final_true_loss", "validation_loss"] {
        let (a, b) = (numbers(&f64_csv, col), numbers(&f32_csv, col));
        assert_eq!(a.len(), 18, "2 seeds x 9 runs");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-3, "{col}: f64 {x} vs f32 {y}");
        }
    }
    // the validation gap is paired within a seed: zero for the full batch,
    // rounding for corrected, and a real difference for naive
    let strategies = csv_column(&f32_csv, "strategy");
    let gaps = numbers(&f32_csv, "validation_gap_to_full");
    for (strategy, gap) in strategies.iter().zip(&gaps) {
        match strategy.as_str() {
            "full" => assert_eq!(*gap, 0.0),
            "corrected" => assert!(gap.abs() < 1e-4, "corrected's validation gap {gap}"),
            _ => {}
        }
    }
    assert!(strategies.iter().zip(&gaps).any(|(s, g)| s == "naive" && g.abs() > 1e-5), "naive never moved: {gaps:?}");
}

#[test]
fn bad_input_is_named_and_fails() {
    let dir = tmp("bad");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["export-grads".into(), dir.display().to_string(), "--micro-batch".into(), "3".into()], "does not divide"),
        (vec!["sweep".into(), "--spread".into(), "2".into()], "spread"),
        (vec!["sweep".into(), "--lr".into(), "NaN".into()], "learning_rate"),
        (vec!["sweep".into(), "--preset".into(), "huge".into()], "huge"),
        (vec!["train".into(), "--optimizer".into(), "lion".into()], "optimizer"),
        (vec!["sweep".into(), "--packing".into(), "zipped".into()], "packing: \"zipped\""),
        (vec!["sweep".into(), "--ranks".into(), "3".into()], "ranks: 3 ranks"),
        (vec!["sweep".into(), "--corpus".into(), "nope".into()], "corpus: \"nope\""),
        (
            vec!["sweep".into(), "--mask-prompt".into(), "--packing".into(), "packed".into()],
            "mask_prompt: needs one document",
        ),
        (vec!["sweep".into(), "--seeds".into(), "0".into()], "--seeds"),
        (
            vec!["sweep".into(), "--backend".into(), "tpu".into()],
            "--backend: unknown backend \"tpu\"; choose gpu, cpu, reference",
        ),
        (vec!["sweep".into(), "--schedule".into(), "linear".into()], "--schedule"),
        (
            vec![
                "sweep".into(),
                "--schedule".into(),
                "cosine".into(),
                "--steps".into(),
                "5".into(),
                "--warmup".into(),
                "5".into(),
            ],
            "--warmup must be below --steps (5)",
        ),
        (vec!["sweep".into(), "--lora".into(), "0".into()], "lora_rank"),
        (
            vec!["sweep".into(), "--lora".into(), "4".into(), "--lora-targets".into(), "attn,mlp".into()],
            "--lora-targets",
        ),
        (vec!["sweep".into(), "--lora".into(), "4".into(), "--lora-alpha".into(), "0".into()], "lora_alpha"),
        (vec!["train".into(), "--init".into(), "/nonexistent.safetensors".into()], "--init /nonexistent.safetensors"),
        (vec!["pretrain".into(), "--out".into(), "x.safetensors".into(), "--lora".into(), "2".into()], "--lora"),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gradlab(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        ("binary.txt", vec![b'a', 0xff, 0xfe, b'b']),
        ("empty.txt", vec![]),
        ("tiny.txt", b"just a few words".to_vec()),
    ];
    for (name, bytes, expected) in files.iter().zip(["UTF-8", "empty", "too short"]).map(|((n, b), e)| (n, b, e)) {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = gradlab(&["sweep", "--steps", "1", "--text", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(expected), "{name}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every scenario of the page (www/lab/scenarios.json) keeps its claim over
/// a short stretch on the f32 CPU backend, as `gradlab scenario` checks it;
/// the full measurement (5 seeds to each horizon) is the README's table.
#[test]
fn every_scenario_keeps_its_claim_over_a_short_run() {
    let out = gradlab(&["scenario", "all", "--seeds", "2", "--steps", "40"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| scenario")).collect();
    assert_eq!(rows.len(), gradlab::lab::page::scenarios().len(), "{stdout}");
    assert!(rows.iter().all(|r| r.ends_with("| yes |")), "{stdout}");
    assert!(!stderr.contains("note:"), "the default backend is not an old spelling: {stderr}");

    let out = gradlab(&["scenario", "nope"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("scenario: unknown scenario \"nope\"; choose fine-tuning"),
        "{stderr}"
    );
}

/// Adapters trained for a few steps (`train --save-adapters`), so B is no
/// longer zero: `export-grads --adapters` starts from them, and the adapters'
/// gradients, A's included, match the f64 reference.
#[test]
fn export_grads_from_saved_adapters_matches_the_f64_reference() {
    let dir = tmp("export-adapters");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("trained.safetensors");
    let lora_flags = ["--lora", "3", "--lora-alpha", "5", "--lora-targets", "attn_proj,fc"];
    let mut args = vec!["train", "--steps", "3", "--lr", "0.02", "--batch", "4", "--seed", "3"];
    args.extend(["--save-adapters", file.to_str().unwrap()]);
    args.extend(lora_flags);
    let out = gradlab(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let targets = LoraConfig::target_bits(&[LoraTarget::AttnProj, LoraTarget::Fc]);
    let lora = LoraConfig { rank: 3, alpha: 5.0, targets, seed: 3 };
    let layout = AdapterLayout::new(&ParamLayout::new(&ModelConfig::nano()), lora).unwrap();
    let trained = adapters_from_safetensors(&layout, &std::fs::read(&file).unwrap()).unwrap();
    assert!(layout.linears.iter().all(|l| trained[l.b.range()].iter().any(|&x| x != 0.0)), "B moved off zero");
    let mut extra = vec!["--micro-batch", "2", "--batch", "8", "--adapters", file.to_str().unwrap()];
    extra.extend(lora_flags);
    export_matches("export-adapters-grads", &extra, &["full", "naive", "corrected"], Some(lora), Some(&file));
    let _ = std::fs::remove_dir_all(&dir);
}

/// nano's adapters of `lora` (A at its init, B small and not zero) after
/// `edit`, as `train --save-adapters` writes them (with `metadata`) or as
/// bare tensors (without: as another tool might), `skip` left out and
/// `reshape` given another shape.
fn adapters_file(
    lora: LoraConfig,
    metadata: bool,
    edit: impl FnOnce(&AdapterLayout, &mut Vec<f32>),
    skip: Option<&str>,
    reshape: Option<(&str, Vec<usize>)>,
) -> Vec<u8> {
    let layout = AdapterLayout::new(&ParamLayout::new(&ModelConfig::nano()), lora).unwrap();
    let mut values = layout.init();
    for l in &layout.linears {
        for (i, x) in values[l.b.range()].iter_mut().enumerate() {
            *x = 0.01 * ((i % 7) as f32 - 3.0);
        }
    }
    edit(&layout, &mut values);
    if metadata {
        return gradlab::checkpoint::adapters_to_safetensors(&layout, &values, None).unwrap();
    }
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = layout
        .tensors()
        .into_iter()
        .filter(|t| Some(t.name.as_str()) != skip)
        .map(|t| {
            let shape = match &reshape {
                Some((name, shape)) if *name == t.name => shape.clone(),
                _ => t.shape.clone(),
            };
            let n: usize = shape.iter().product();
            let data = values[t.offset..].iter().chain(std::iter::repeat(&0.0)).take(n);
            (t.name.clone(), shape, data.flat_map(|x| x.to_le_bytes()).collect())
        })
        .collect();
    let views = tensors.iter().map(|(name, shape, data)| {
        (name.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data).unwrap())
    });
    safetensors::serialize(views, None).unwrap()
}

/// The value at `index` of adapter tensor `name`, set to `value`.
fn set(name: &'static str, index: usize, value: f32) -> impl FnOnce(&AdapterLayout, &mut Vec<f32>) {
    move |layout, values| {
        let t = layout.tensors().into_iter().find(|t| t.name == name).unwrap();
        values[t.offset + index] = value;
    }
}

/// `--adapters` refuses, naming the flag, the file and the tensor, a file
/// that is missing or not safetensors, adapters of another rank, α or set of
/// layers, a tensor missing or of another shape, and NaN or infinite
/// values — the same in `train`, `sweep` and `export-grads`, before any
/// training or output.
#[test]
fn saved_adapters_that_do_not_fit_are_refused_by_name() {
    let dir = tmp("adapters-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let r2 = LoraConfig::all_layers(2, 1);
    let r4 = LoraConfig::all_layers(4, 1);
    let keep = |_: &AdapterLayout, _: &mut Vec<f32>| {};
    let files: Vec<(&str, Vec<u8>, Vec<&str>, &str)> = vec![
        ("garbage", b"not a tensor file".to_vec(), vec!["--lora", "2"], "not a safetensors file"),
        (
            "rank4",
            adapters_file(r4, true, keep, None, None),
            vec!["--lora", "2"],
            "the adapters are of rank 4 (its lora_rank); --lora asks for rank 2",
        ),
        (
            "rank4-bare",
            adapters_file(r4, false, keep, None, None),
            vec!["--lora", "2"],
            "the adapters are of rank 4 (tensor h.0.attn.c_attn.lora_A has shape [4, 64]); --lora asks for rank 2",
        ),
        (
            "shape",
            adapters_file(r2, false, keep, None, Some(("h.0.mlp.c_fc.lora_B", vec![128, 2]))),
            vec!["--lora", "2"],
            "tensor h.0.mlp.c_fc.lora_B has shape [128, 2], expected [256, 2]",
        ),
        (
            "missing",
            adapters_file(r2, false, keep, Some("h.1.mlp.c_proj.lora_B"), None),
            vec!["--lora", "2"],
            "tensor h.1.mlp.c_proj.lora_B is missing",
        ),
        (
            "alpha",
            adapters_file(r2, true, keep, None, None),
            vec!["--lora", "2", "--lora-alpha", "3"],
            "the adapters were trained with lora_alpha 4; this run's α is 3 (--lora-alpha",
        ),
        (
            "targets",
            adapters_file(r2, true, keep, None, None),
            vec!["--lora", "2", "--lora-targets", "attn"],
            "the adapters sit on attn,attn_proj,fc,fc_proj; --lora-targets asks for attn",
        ),
        (
            "extra",
            adapters_file(r2, false, keep, None, None),
            vec!["--lora", "2", "--lora-targets", "attn,attn_proj,fc"],
            "tensor h.0.mlp.c_proj.lora_A is not one of this run's adapters (2 layers; --lora-targets attn,attn_proj,fc)",
        ),
        (
            "nan",
            adapters_file(r2, true, set("h.0.attn.c_attn.lora_B", 7, f32::NAN), None, None),
            vec!["--lora", "2"],
            "tensor h.0.attn.c_attn.lora_B holds NaN at [3, 1]; every value must be finite",
        ),
        (
            "inf",
            adapters_file(r2, true, set("h.1.mlp.c_fc.lora_A", 65, f32::INFINITY), None, None),
            vec!["--lora", "2"],
            "tensor h.1.mlp.c_fc.lora_A holds inf at [1, 1]",
        ),
    ];
    let mut cases: Vec<(String, Vec<&str>, String)> = Vec::new();
    let missing = "/nonexistent/adapters.safetensors";
    cases.push((missing.into(), vec!["--lora", "2"], format!("--adapters {missing}: No such file")));
    for (name, bytes, flags, expected) in &files {
        let path = dir.join(format!("{name}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        let path = path.display().to_string();
        cases.push((path.clone(), flags.clone(), format!("--adapters {path}: {expected}")));
    }
    let out_dir = dir.join("out");
    let out_dir = out_dir.to_str().unwrap();
    for command in ["train", "sweep", "export-grads"] {
        for (path, flags, expected) in &cases {
            let mut args: Vec<&str> = match command {
                "train" => vec!["train", "--steps", "1"],
                "sweep" => vec!["sweep", "--backend", "cpu", "--steps", "1", "--out", out_dir],
                _ => vec!["export-grads", out_dir],
            };
            args.extend(flags.iter().copied());
            args.extend(["--adapters", path.as_str()]);
            let out = gradlab(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} should fail");
            assert!(err.contains(expected.as_str()), "{args:?}: expected {expected:?} in {err}");
            assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        }
        // adapters belong to a LoRA run
        let out = gradlab(&[command, "--adapters", &cases[1].0]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("--lora <R>"), "{command}: {err}");
        assert!(!Path::new(out_dir).exists(), "{command} wrote its output before refusing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `train --adapters` resumes a LoRA run from the adapters `--save-adapters`
/// wrote: the steps are numbered on and the batches go on where they
/// stopped, and the optimizer starts afresh (the file holds no optimizer
/// state). With SGD, which has none, 2 steps and then 2 more from the file
/// are the 4 steps of one run bit for bit: the same losses, the same
/// adapters. (With momentum or Adam the moments restart at zero, so a
/// resumed run differs from one that never stopped.)
#[test]
fn train_resumes_from_saved_adapters_as_one_run() {
    let dir = tmp("resume");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |steps: &str, from: Option<&Path>, to: &Path| -> Vec<(u64, f64)> {
        let mut args = vec!["train", "--lora", "2", "--optimizer", "sgd", "--lr", "0.05", "--batch", "4"];
        args.extend(["--seed", "5", "--json", "--steps", steps, "--save-adapters", to.to_str().unwrap()]);
        if let Some(from) = from {
            args.extend(["--adapters", from.to_str().unwrap()]);
        }
        let out = gradlab(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap())
            })
            .collect()
    };
    let (half, resumed, straight) = (dir.join("half"), dir.join("resumed"), dir.join("straight"));
    let first = run("2", None, &half);
    let second = run("2", Some(&half), &resumed);
    let whole = run("4", None, &straight);
    assert_eq!(whole.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(first, whole[..2], "the first two steps");
    assert_eq!(second, whole[2..], "steps 3 and 4, from the saved adapters");
    let layout = AdapterLayout::new(&ParamLayout::new(&ModelConfig::nano()), LoraConfig::all_layers(2, 5)).unwrap();
    let read = |p: &Path| adapters_from_safetensors(&layout, &std::fs::read(p).unwrap()).unwrap();
    let (at_two, resumed_four, straight_four) = (read(&half), read(&resumed), read(&straight));
    assert!(resumed_four.iter().zip(&straight_four).all(|(a, b)| a.to_bits() == b.to_bits()), "bit for bit");
    assert_ne!(at_two, straight_four, "the last two steps moved the adapters");
    let bytes = std::fs::read(&resumed).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["steps"], "4", "the file counts every step behind it");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sweep --adapters` starts every run of the lab from the file's adapters,
/// and under LoRA `--save-weights` writes each run's adapters beside its
/// weights, in the format `--adapters` reads.
#[test]
fn sweep_starts_every_run_from_saved_adapters_and_saves_theirs() {
    let dir = tmp("sweep-adapters");
    std::fs::create_dir_all(&dir).unwrap();
    let lora = LoraConfig::all_layers(2, 1);
    let start = dir.join("start.safetensors");
    std::fs::write(&start, adapters_file(lora, true, |_, _| {}, None, None)).unwrap();
    let out_dir = dir.join("out");
    let out = gradlab(&[
        "sweep",
        "--backend",
        "cpu",
        "--lora",
        "2",
        "--adapters",
        start.to_str().unwrap(),
        "--optimizer",
        "sgd",
        "--lr",
        "0.0001",
        "--steps",
        "1",
        "--eval-every",
        "0",
        "--val-sequences",
        "8",
        "--save-weights",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("with the adapters of"), "{err}");
    let layout = AdapterLayout::new(&ParamLayout::new(&ModelConfig::nano()), lora).unwrap();
    let given = adapters_from_safetensors(&layout, &std::fs::read(&start).unwrap()).unwrap();
    let saved: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("adapters_"))
        .collect();
    assert_eq!(saved.len(), 9, "one file per run: {saved:?}");
    for path in &saved {
        let bytes = std::fs::read(path).unwrap();
        let values = adapters_from_safetensors(&layout, &bytes).unwrap();
        // one step of SGD at lr 1e-4 moves no value by more than 1e-4; B started at ±0.03
        let moved = values.iter().zip(&given).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(moved <= 1.5e-4, "{}: moved {moved} from the file's adapters", path.display());
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["steps"], "1");
    }
    let full = out_dir.join("adapters_full_b16.safetensors");
    let out = gradlab(&["train", "--lora", "2", "--steps", "1", "--adapters", full.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("(after 1 steps)"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
