//! What every family shares: how a GPU output is compared with its CPU twin
//! (`compare`, the relative error of one output), and the steps each check
//! takes the same way — where an activation's gradient starts, running once
//! per variant, reading the outputs back.
//!
//! Not here: any kernel's check (one file per family) or the registry (`mod.rs`).

use crate::gpu::{GpuContext, GpuError, GradWrite, ProgramBuilder};
use crate::rng::Rng;

/// Relative error of one output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub name: String,
    pub rel_error: f64,
    /// Largest |gpu − cpu| and where.
    pub worst_abs: f64,
    pub worst_index: usize,
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<28} rel {:.2e}  worst |Δ| {:.2e} at {}",
            self.name, self.rel_error, self.worst_abs, self.worst_index
        )
    }
}

/// ‖gpu − cpu‖ / ‖cpu‖ (or the absolute norm when cpu is all zeros).
pub fn compare(name: &str, gpu: &[f32], cpu: &[f64]) -> Comparison {
    compare_with_slack(name, gpu, cpu, |_| 0.0)
}

/// `compare`, forgiving each element `slack(i)` of absolute difference first:
/// for errors the GPU cannot avoid, such as storing a result in f32.
pub(super) fn compare_with_slack(name: &str, gpu: &[f32], cpu: &[f64], slack: impl Fn(usize) -> f64) -> Comparison {
    assert_eq!(gpu.len(), cpu.len(), "{name}: lengths differ");
    let (mut diff2, mut ref2, mut worst_abs, mut worst_index) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let raw = g as f64 - c;
        let d = if raw.is_nan() { raw } else { (raw.abs() - slack(i)).max(0.0) };
        diff2 += d * d;
        ref2 += c * c;
        if d.abs() > worst_abs || d.is_nan() {
            worst_abs = d.abs();
            worst_index = i;
        }
    }
    let rel_error = if ref2 > 0.0 { (diff2 / ref2).sqrt() } else { diff2.sqrt() };
    Comparison {
        name: name.to_string(),
        rel_error: if rel_error.is_nan() { f64::INFINITY } else { rel_error },
        worst_abs,
        worst_index,
    }
}

pub(super) fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Both ways a backward kernel writes an activation's gradient.
pub(super) const WRITES: [GradWrite; 2] = [GradWrite::Accumulate, GradWrite::Overwrite];

/// Where a check starts an activation's gradient, on the GPU and for the CPU
/// twin: random values to add to, or NaN on the GPU, which an overwrite must
/// never read, against zeros for the twin.
pub(super) fn grad_start(rng: &mut Rng, len: usize, write: GradWrite) -> (Vec<f32>, Vec<f64>) {
    match write {
        GradWrite::Accumulate => {
            let start = rng.vec_f32(len, 1.0);
            let wide = f64s(&start);
            (start, wide)
        }
        GradWrite::Overwrite => (vec![f32::NAN; len], vec![0.0; len]),
    }
}

/// Runs a check once per variant (a kernel forced, a way of writing),
/// naming each comparison after its variant.
pub(super) async fn per_variant<V, F, Fut>(variants: &[V], mut check: F) -> Result<Vec<Comparison>, GpuError>
where
    V: Copy + std::fmt::Debug,
    F: FnMut(V) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Comparison>, GpuError>>,
{
    let mut all = Vec::new();
    for &variant in variants {
        let name = format!("{variant:?}").to_lowercase();
        all.extend(check(variant).await?.into_iter().map(|r| Comparison { name: format!("{} ({name})", r.name), ..r }));
    }
    Ok(all)
}

/// Runs the program, then reads each output back.
pub(super) async fn run_and_read(
    ctx: &GpuContext,
    pb: ProgramBuilder,
    outputs: &[(&str, &wgpu::Buffer, usize)],
) -> Result<Vec<Vec<f32>>, GpuError> {
    pb.finish().run(ctx);
    let mut out = Vec::new();
    for (_, buf, n) in outputs {
        out.push(ctx.read_f32(buf, 0, *n).await?);
    }
    Ok(out)
}
