//! GPU-versus-CPU checks of every kernel and of a whole training step.
//!
//! They live in the library, not only in `tests/`, because the same checks run
//! natively (cargo test), in the browser (wasm-bindgen-test) and from the
//! command line (`gradlab check`): one definition, three adapters. Each draws
//! fresh inputs from a seed at sizes that are not multiples of any tile, runs
//! the kernel on the GPU and its CPU twin in f64, and reports the relative
//! error ‖gpu − cpu‖ / ‖cpu‖ of every output.
//!
//! One file per kernel family (`matmul`, `crossentropy`, ...): its check, the
//! cases it runs and their tolerance, as a `Family`. `compare` holds what the
//! families share. `FAMILIES` registers each family once, and everything
//! else — the suite, the quick suite, both test runners, `gradlab check` —
//! goes through it: a new family is its file, its `mod` line and one entry
//! there.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::gpu::GpuContext;
use crate::train::StepError;

pub mod attention;
mod compare;
pub mod crossentropy;
pub mod elementwise;
pub mod encoder;
pub mod layernorm;
pub mod lora;
pub mod lora_model;
pub mod matmul;
pub mod model;
pub mod optimizer;
pub mod reductions;
pub mod sampling;

pub use compare::{compare, Comparison};
pub use crossentropy::LogitRows;
pub use model::{model_case, ModelCase};
pub use optimizer::UpdateKind;

/// Every kernel family, each once, in suite order. A check's seed comes from
/// its position in the suite: a new family goes last, so the others keep
/// theirs.
pub const FAMILIES: &[Family] = &[
    matmul::FAMILY,
    crossentropy::FAMILY,
    sampling::FAMILY,
    optimizer::FAMILY,
    encoder::FAMILY,
    layernorm::FAMILY,
    attention::FAMILY,
    elementwise::FAMILY,
    lora::FAMILY,
    reductions::FAMILY,
    model::FAMILY,
    lora_model::FAMILY,
];

/// f32 kernels against their f64 twins.
pub const KERNEL_TOLERANCE: f64 = 1e-4;
/// A whole model's loss and gradients: many f32 kernels in a row.
pub const MODEL_TOLERANCE: f64 = 1e-3;
/// Token ids agree exactly or not at all (`rel_error` is the fraction that differ).
pub const EXACT: f64 = f64::MIN_POSITIVE;

/// A kernel family: its name, for grouping and in failure messages, and its
/// checks.
pub struct Family {
    pub name: &'static str,
    /// The family's checks, in a fixed order, each made by `Family::check`.
    checks: fn(&Family) -> Vec<Check>,
}

impl Family {
    /// Every check of the family, in its fixed order.
    pub fn checks(&self) -> Vec<Check> {
        (self.checks)(self)
    }

    /// A check of this family within `tolerance`; `quick` puts it in the
    /// quick suite.
    fn check(&self, case: impl Case + 'static, tolerance: f64, quick: bool) -> Check {
        Check { family: self.name, case: Arc::new(case), tolerance, quick }
    }

    /// A check of one kernel against its twin (`KERNEL_TOLERANCE`).
    fn kernel(&self, case: impl Case + 'static, quick: bool) -> Check {
        self.check(case, KERNEL_TOLERANCE, quick)
    }

    /// A check of a whole model (`MODEL_TOLERANCE`).
    fn model(&self, case: impl Case + 'static, quick: bool) -> Check {
        self.check(case, MODEL_TOLERANCE, quick)
    }
}

/// What one check varies — its sizes, deliberately not multiples of any
/// tile, and any other setting — and how it runs. Its `Debug` names the case
/// in a failure.
pub trait Case: std::fmt::Debug + Send + Sync {
    /// Runs the case on `ctx` with inputs drawn from `seed`.
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a>;
}

/// A case running: its comparisons, once the GPU has answered.
pub type Running<'a> = Pin<Box<dyn Future<Output = Result<Vec<Comparison>, StepError>> + 'a>>;

/// A case of one family with its tolerance, and whether the quick suite
/// (browser tests and `gradlab check`, where SwiftShader or a user waits)
/// includes it.
#[derive(Debug, Clone)]
pub struct Check {
    family: &'static str,
    pub case: Arc<dyn Case>,
    pub tolerance: f64,
    pub quick: bool,
}

impl Check {
    /// The kernel family's name, for grouping: "matmul", "crossentropy", ...
    pub fn family(&self) -> &'static str {
        self.family
    }

    /// Runs the case on `ctx` with inputs drawn from `seed`.
    pub async fn run(&self, ctx: &GpuContext, seed: u64) -> Result<Vec<Comparison>, StepError> {
        self.case.run(ctx, seed).await
    }

    /// The comparisons of a run at or above the tolerance.
    pub fn failures<'a>(&self, results: &'a [Comparison]) -> Vec<&'a Comparison> {
        results.iter().filter(|r| r.rel_error >= self.tolerance).collect()
    }
}

/// Every check, in a fixed order (seeds are derived from the position).
pub fn suite() -> Vec<Check> {
    FAMILIES.iter().flat_map(Family::checks).collect()
}

/// The checks the browser tests and `gradlab check` run.
pub fn quick_suite() -> Vec<Check> {
    suite().into_iter().filter(|c| c.quick).collect()
}

/// A seed for fresh random inputs: `GRADLAB_SEED` when set (natively), the
/// clock otherwise. Printed when made and again if the test holding it
/// fails, so any failure can be replayed.
pub struct Seed(pub u64);

impl Seed {
    pub fn fresh() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        let seed = std::env::var("GRADLAB_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
        #[cfg(target_arch = "wasm32")]
        let seed = js_sys::Date::now() as u64;
        log(&format!("seed {seed} (GRADLAB_SEED={seed} replays it)"));
        Seed(seed)
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log(&format!("FAILED with seed {0}: replay with GRADLAB_SEED={0}", self.0));
        }
    }
}

/// A line on stderr natively, on the console in a browser.
pub fn log(line: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
}

/// Runs every check of `family` in `checks` with seeds seed+i (i its position
/// in the suite), logs every comparison, and returns the failures in words.
pub async fn run_family(ctx: &GpuContext, checks: &[Check], family: &str, seed: u64) -> Result<Vec<String>, StepError> {
    let mut failed = Vec::new();
    let mut ran = 0;
    for (i, check) in checks.iter().enumerate().filter(|(_, c)| c.family() == family) {
        let results = check.run(ctx, seed.wrapping_add(i as u64)).await?;
        ran += 1;
        for r in &results {
            log(&r.to_string());
        }
        for bad in check.failures(&results) {
            failed.push(format!("{:?}: {bad} (tolerance {:e})", check.case, check.tolerance));
        }
    }
    if ran == 0 {
        failed.push(format!("no check of family {family:?}"));
    }
    Ok(failed)
}
