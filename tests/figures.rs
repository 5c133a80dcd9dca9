//! The seed figures' shipped data (www/lab/seed-figures.json, which the page
//! draws) is what `gradlab figures` computes: one seed is trained again here
//! and must give that seed's numbers; the file's summary must be its seeds'
//! mean ± sd, and the figures must show what they are shipped to show.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

use serde_json::Value;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/www/lab/seed-figures.json");

/// The f32 CPU backend takes the same steps in the same order on every run,
/// so the same seed gives the same bits; this leaves room only for a libm
/// that rounds exp or ln differently on another machine.
const RELATIVE: f64 = 1e-6;

fn shipped() -> Value {
    let text = std::fs::read_to_string(SHIPPED).unwrap_or_else(|e| panic!("{SHIPPED}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{SHIPPED}: {e}"))
}

fn number(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what}: not a number ({v})"))
}

/// The (strategy, G) of each point and its three figures.
fn points(seed: &Value) -> Vec<(String, u64, [f64; 3])> {
    seed["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            let name = format!("seed {} {} G={}", seed["seed"], p["strategy"], p["g"]);
            let figures = ["logged_gap", "true_gap", "distance"].map(|k| number(&p[k], &format!("{name} {k}")));
            (p["strategy"].as_str().expect("strategy").to_string(), p["g"].as_u64().expect("g"), figures)
        })
        .collect()
}

#[test]
fn one_seed_trained_again_gives_the_shipped_numbers() {
    let file = shipped();
    let seeds = file["per_seed"].as_array().expect("per_seed");
    // the last seed: the first is also what the page re-runs by default
    let expected = seeds.last().expect("at least one seed");
    let seed = expected["seed"].as_u64().expect("seed");
    let out = std::env::temp_dir().join(format!("gradlab-test-figures-{}.json", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["figures", "--seeds", "1", "--first-seed", &seed.to_string(), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "gradlab figures failed: {}", String::from_utf8_lossy(&run.stderr));
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);

    for key in ["settings", "steps", "start", "backend"] {
        assert_eq!(
            again[key], file[key],
            "{key}: the shipped file was computed with other settings; run its command again"
        );
    }
    let (want, got) = (points(expected), points(&again["per_seed"][0]));
    assert_eq!(want.len(), got.len());
    let mut worst: f64 = 0.0;
    for ((strategy, g, w), (s2, g2, v)) in want.iter().zip(&got) {
        assert_eq!((strategy, g), (s2, g2));
        for (k, (a, b)) in w.iter().zip(v).enumerate() {
            let scale = a.abs().max(1e-12);
            worst = worst.max((a - b).abs() / scale);
            assert!(
                (a - b).abs() <= RELATIVE * scale,
                "seed {seed} {strategy} G={g} figure {k}: shipped {a:e}, computed again {b:e}"
            );
        }
    }
    eprintln!("seed {seed}: largest relative difference from the shipped file {worst:e}");
}

#[test]
fn the_shipped_summary_is_its_seeds_and_shows_the_figures_claims() {
    let file = shipped();
    let seeds: Vec<Vec<(String, u64, [f64; 3])>> =
        file["per_seed"].as_array().expect("per_seed").iter().map(points).collect();
    assert!(seeds.len() >= 5, "the figures draw the spread over at least 5 seeds, the file has {}", seeds.len());
    assert!(file["command"].as_str().is_some_and(|c| c.contains("figures")), "the file records its command");
    assert!(file["commit"].as_str().is_some_and(|c| c.len() == 40), "the file records the commit it was computed at");

    let summary = file["summary"].as_array().expect("summary");
    let naive_means = |k: usize| -> Vec<(u64, f64)> {
        let mut by_g: Vec<(u64, f64)> = summary
            .iter()
            .enumerate()
            .filter(|(_, s)| s["strategy"] == "naive" || s["strategy"] == "full")
            .map(|(i, s)| {
                let values: Vec<f64> = seeds.iter().map(|p| p[i].2[k]).collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let sd = (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt();
                let key = ["logged_gap", "true_gap", "distance"][k];
                let (m, d) = (number(&s[key]["mean"], key), number(&s[key]["sd"], key));
                assert!((m - mean).abs() <= 1e-12 * mean.abs().max(1e-9), "{key} mean at G={}: {m} vs {mean}", s["g"]);
                assert!((d - sd).abs() <= 1e-9 * sd.max(1e-12), "{key} sd at G={}: {d} vs {sd}", s["g"]);
                (s["g"].as_u64().expect("g"), m)
            })
            .collect();
        by_g.sort_by_key(|&(g, _)| g);
        by_g
    };
    for (k, what) in [(0, "naive's logged gap"), (2, "‖ΔW − ΔW_full‖")] {
        let means = naive_means(k);
        assert_eq!(means.iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2, 4, 8, 16]);
        assert!(means.windows(2).all(|w| w[1].1 > w[0].1), "{what}: the means must grow with G, got {means:?}");
    }
}
