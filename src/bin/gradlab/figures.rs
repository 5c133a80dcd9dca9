//! `figures`: the data of the seed write-up's two figures, which the page
//! draws above its lab (www/lab/seedfigures.js) — naive's logged and true
//! loss minus the full batch's, and ‖ΔW − ΔW_full‖ at the last step, against
//! G — over several seeds, on gradlab's f32 CPU backend (the page's path
//! without a GPU). The experiment is declared here once (`SEED_FIGURES`);
//! the file written records its lab settings exactly as the page sends them,
//! so the page's "Run it yourself" trains the same lab, and the command and
//! commit it was computed at. tests/figures.rs re-runs one seed against the
//! shipped file.

use std::sync::Arc;

use gradlab::accum::Strategy;
use gradlab::cpu::FastCpuRun;
use gradlab::lab::experiment::MeanSd;
use gradlab::lab::settings::LabSettings;
use gradlab::lab::{Backend, Lab, RunMetrics};
use pollster::block_on;
use serde::Serialize;
use serde_json::{json, Value};

use crate::common::{each_in_parallel, read_weights, write, AnyError};

/// The experiment behind the figures: LoRA adapters on the shipped base,
/// whole verses with their references masked, the full batch beside naive
/// and corrected at every micro-batch size, a constant AdamW rate.
pub struct SeedFigures {
    /// The shipped base, relative to the repository (and to the site's root).
    pub base: &'static str,
    pub corpus: &'static str,
    /// B: sequences per optimizer step.
    pub batch: usize,
    /// T: positions per sequence; verses longer than T + 1 tokens are cut.
    pub context: usize,
    pub lora_rank: usize,
    pub lr: f64,
    /// Optimizer steps of every run: as few as still order the means of
    /// both figures by G (every seed's distances too), so that the page
    /// re-runs a seed in a reader's browser within a minute and a half on
    /// two cores without a GPU (BENCHMARKS.md, "The seed figures").
    pub steps: u64,
}

pub const SEED_FIGURES: SeedFigures = SeedFigures {
    base: "data/base/nano-kjv.safetensors",
    corpus: "kjv",
    batch: 16,
    // at 64 most verses are cut to the same length, and naive's logged gap
    // hides in the spread below G = 16
    context: 128,
    lora_rank: 8,
    lr: 3e-3,
    steps: 40,
};

impl SeedFigures {
    /// The lab settings of `seed`, as the page's wasm API takes them
    /// (`lab::settings::LabSettings`): one lab holding the full batch and
    /// naive and corrected at b = 1, 2, 4, 8 (`sweep`).
    pub fn settings(&self, seed: u64) -> Value {
        json!({
            "preset": "nano",
            "batch": self.batch,
            "micro_batch": self.batch,
            "spread": 1.0,
            "seq_len": self.context,
            "optimizer": { "kind": "adamw", "lr": self.lr, "schedule": { "kind": "constant" } },
            "seed": seed,
            "sweep": true,
            "corpus": self.corpus,
            "packing": "padded",
            "mask_prompt": true,
            "ranks": 1,
            "lora_rank": self.lora_rank,
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Seeds --first-seed, --first-seed+1, ...: the figures draw every
    /// seed's points and their mean ± sd.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// The JSON file the page loads.
    #[arg(long, default_value = "www/lab/seed-figures.json")]
    pub out: std::path::PathBuf,
}

/// One run's figures in one seed: a point of the figures.
#[derive(Debug, Clone, Serialize)]
struct Point {
    strategy: Strategy,
    /// G = B / b micro-batches per step (1 for the full batch).
    g: usize,
    micro_batch: usize,
    /// Mean over the steps of this run's logged loss minus the full batch's:
    /// what a trainer would print, against the full batch's print.
    logged_gap: f64,
    /// Mean over the steps of this run's true loss Σℓ/N minus the full
    /// batch's, on the same batches.
    true_gap: f64,
    /// ‖ΔW − ΔW_full‖ after the last step.
    distance: f64,
}

#[derive(Debug, Serialize)]
struct SeedPoints {
    seed: u64,
    points: Vec<Point>,
}

/// One run over the seeds.
#[derive(Debug, Serialize)]
struct SummaryPoint {
    strategy: Strategy,
    g: usize,
    logged_gap: MeanSd,
    true_gap: MeanSd,
    distance: MeanSd,
}

/// Trains seed `seed`'s lab from `base` and reduces its per-step metrics to
/// one point per run.
fn run_seed(seed: u64, base: &[f32]) -> Result<SeedPoints, AnyError> {
    let settings = LabSettings::from_json(SEED_FIGURES.settings(seed))?;
    let config = settings.resolve(Backend::Cpu)?;
    let mut lab = Lab::with_weights::<FastCpuRun>(&(), config.clone(), settings.corpus()?, base)?;
    let mut metrics: Vec<RunMetrics> = Vec::new();
    for _ in 0..SEED_FIGURES.steps {
        block_on(lab.step())?;
        metrics.extend(block_on(lab.poll())?);
    }
    metrics.extend(block_on(lab.flush())?);
    let steps = SEED_FIGURES.steps as usize;
    let per_step = |run: usize| -> Result<Vec<&RunMetrics>, AnyError> {
        let mut of_run: Vec<&RunMetrics> = metrics.iter().filter(|m| m.run == run).collect();
        of_run.sort_by_key(|m| m.step);
        if of_run.len() != steps {
            return Err(format!("seed {seed}: run {run} reported {} of {steps} steps", of_run.len()).into());
        }
        Ok(of_run)
    };
    let full = per_step(0)?;
    let mut points = Vec::new();
    for (run, spec) in lab.specs().iter().enumerate() {
        let this = per_step(run)?;
        let mean_gap =
            |f: fn(&RunMetrics) -> f64| this.iter().zip(&full).map(|(m, f0)| f(m) - f(f0)).sum::<f64>() / steps as f64;
        points.push(Point {
            strategy: spec.strategy,
            g: config.batch / spec.micro_batch,
            micro_batch: spec.micro_batch,
            logged_gap: mean_gap(|m| m.logged_loss),
            true_gap: mean_gap(|m| m.true_loss),
            distance: this[steps - 1].weight_distance,
        });
    }
    points.sort_by_key(|p| (p.strategy != Strategy::FullBatch, p.strategy == Strategy::Corrected, p.g));
    Ok(SeedPoints { seed, points })
}

/// The commit the figures are computed at, and whether the code or data had
/// changes not yet committed then; None outside a git checkout.
fn commit() -> Option<(String, bool)> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--", "src", "shaders", "build.rs", "Cargo.toml", "Cargo.lock", "data"])?;
    Some((head, !dirty.is_empty()))
}

pub fn run(args: Args) -> Result<(), AnyError> {
    if args.seeds == 0 || args.seeds > 100 {
        return Err(format!("--seeds must be between 1 and 100, got {}", args.seeds).into());
    }
    if args.first_seed == 0 || args.first_seed > (1 << 53) - 100 {
        return Err(format!("--first-seed must be between 1 and 2^53 - 100, got {}", args.first_seed).into());
    }
    let settings = LabSettings::from_json(SEED_FIGURES.settings(args.first_seed))?;
    let config = settings.resolve(Backend::Cpu)?;
    let base_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED_FIGURES.base);
    let base = Arc::new(read_weights(&base_path, &config.model)?);
    let seeds: Vec<u64> = (args.first_seed..args.first_seed + args.seeds).collect();
    eprintln!(
        "gradlab figures: {} seed(s) x {} steps of {} runs (LoRA r = {} on {}, B = {}, T = {}) on the f32 CPU backend",
        seeds.len(),
        SEED_FIGURES.steps,
        config.all_runs().len(),
        SEED_FIGURES.lora_rank,
        SEED_FIGURES.base,
        SEED_FIGURES.batch,
        SEED_FIGURES.context
    );
    let started = std::time::Instant::now();
    let per_seed = each_in_parallel(seeds.len(), |i| {
        let seed = seeds[i];
        let points = run_seed(seed, &base).map_err(|e| format!("seed {seed}: {e}"))?;
        eprintln!("gradlab figures: seed {seed} done after {:.0} s", started.elapsed().as_secs_f64());
        Ok(points)
    })?;
    let seconds = started.elapsed().as_secs_f64();

    let summary: Vec<SummaryPoint> = per_seed[0]
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let of = |f: fn(&Point) -> f64| MeanSd::of(&per_seed.iter().map(|s| f(&s.points[i])).collect::<Vec<_>>());
            SummaryPoint {
                strategy: p.strategy,
                g: p.g,
                logged_gap: of(|p| p.logged_gap),
                true_gap: of(|p| p.true_gap),
                distance: of(|p| p.distance),
            }
        })
        .collect();
    let mut command = format!("cargo run --release -- figures --seeds {}", args.seeds);
    if args.first_seed != 1 {
        command += &format!(" --first-seed {}", args.first_seed);
    }
    command += &format!(" --out {}", args.out.display());
    let (commit, uncommitted) = match commit() {
        Some((head, dirty)) => (json!(head), json!(dirty)),
        None => (Value::Null, Value::Null),
    };
    let mut page_settings = SEED_FIGURES.settings(args.first_seed);
    // the page sets each seed's own
    page_settings.as_object_mut().map(|o| o.remove("seed"));
    let file = json!({
        "about": "Data of the seed write-up's two figures (www/lab/seedfigures.js), computed by `gradlab figures` (src/bin/gradlab/figures.rs) on the f32 CPU backend. logged_gap and true_gap: mean over the steps of the run's logged (or true, Σℓ/N) loss minus the full batch's on the same batches; distance: ‖ΔW − ΔW_full‖ after the last step, ΔW = (α/r)·B·A over the adapted matrices. summary: mean ± sample standard deviation over the seeds. settings: the lab settings every seed's lab is built from (the wasm API's LabSettings), with that seed; start: the weights every run starts from.",
        "command": command,
        "commit": commit,
        "uncommitted_changes": uncommitted,
        "backend": "cpu",
        "start": SEED_FIGURES.base,
        "steps": SEED_FIGURES.steps,
        "settings": page_settings,
        "seeds": seeds,
        "seconds": (seconds * 10.0).round() / 10.0,
        "summary": summary,
        "per_seed": per_seed,
    });
    write(&args.out, format!("{}\n", serde_json::to_string_pretty(&file)?).as_bytes())?;
    eprintln!("gradlab figures: wrote {} after {seconds:.0} s", args.out.display());
    for s in summary.iter().filter(|s| s.strategy == Strategy::Naive || s.strategy == Strategy::FullBatch) {
        eprintln!(
            "  {:>9} G = {:>2}: logged gap {:+.3e} ± {:.1e}, true gap {:+.3e} ± {:.1e}, ‖ΔW − ΔW_full‖ {:.4} ± {:.4}",
            s.strategy.name(),
            s.g,
            s.logged_gap.mean,
            s.logged_gap.sd,
            s.true_gap.mean,
            s.true_gap.sd,
            s.distance.mean,
            s.distance.sd
        );
    }
    Ok(())
}
