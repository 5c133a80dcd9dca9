//! Every kernel on the GPU (natively: whatever adapter wgpu finds, lavapipe on
//! CI) against its CPU twin, plus the whole model's loss and gradients: the
//! full `checks::suite()`, every family of `checks::FAMILIES` in turn, each
//! check with the tolerance the suite gives it. Fresh inputs every run; the
//! seed is printed (GRADLAB_SEED replays it).
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use gradlab::checks::{self, Seed};
use gradlab::gpu::GpuContext;

fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = GpuContext::new_blocking().expect("a GPU adapter (install mesa-vulkan-drivers for lavapipe)");
        eprintln!("adapter: {}", ctx.adapter);
        ctx
    })
}

/// Runs every family of the registry over the full suite, all of them even
/// after one fails, and fails naming each family with a comparison above its
/// tolerance (or an error) and the seed that replays it.
#[test]
fn every_family_matches_cpu() {
    let seed = Seed::fresh();
    let suite = checks::suite();
    let mut failed = Vec::new();
    for family in checks::FAMILIES {
        let lines = match pollster::block_on(checks::run_family(ctx(), &suite, family.name, seed.0)) {
            Ok(lines) => lines,
            Err(e) => vec![format!("error: {e}")],
        };
        failed.extend(lines.into_iter().map(|line| format!("{}: {line}", family.name)));
    }
    assert!(
        failed.is_empty(),
        "above tolerance with seed {0} (GRADLAB_SEED={0} replays it):\n{1}",
        seed.0,
        failed.join("\n")
    );
}

#[test]
fn every_family_is_registered_once_with_checks_and_the_quick_suite_covers_each() {
    let names: Vec<&str> = checks::FAMILIES.iter().map(|f| f.name).collect();
    for (i, name) in names.iter().enumerate() {
        assert!(!names[..i].contains(name), "{name} is registered twice");
    }
    for family in checks::FAMILIES {
        let checks = family.checks();
        assert!(!checks.is_empty(), "{} has no check", family.name);
        assert!(checks.iter().all(|c| c.family() == family.name), "{} makes another family's checks", family.name);
    }
    for check in checks::suite() {
        assert!(names.contains(&check.family()), "{:?} has no family in the registry", check.case);
    }
    for family in names {
        assert!(checks::quick_suite().iter().any(|c| c.family() == family), "the quick suite skips {family}");
    }
}

#[test]
fn the_benchmark_matmul_matches_cpu_and_refuses_bad_shapes() {
    use gradlab::bench::MatmulCase;
    let seed = Seed::fresh();
    let mut rng = gradlab::rng::Rng::new(seed.0);
    let (m, k, n) = (37, 13, 29);
    let (x, w, b) = (rng.vec_f32(m * k, 1.0), rng.vec_f32(n * k, 1.0), rng.vec_f32(n, 1.0));
    let case = MatmulCase::new(ctx(), m, k, n, &x, &w, &b).unwrap();
    assert_eq!(case.flops(), 2.0 * (m * k * n) as f64);
    pollster::block_on(case.run(ctx(), 3)).unwrap();
    let got = pollster::block_on(case.output(ctx())).unwrap();
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let mut want = vec![0.0; m * n];
    gradlab::cpu::matmul_forward(&mut want, &f(&x), &f(&w), Some(&f(&b)), m, k, n);
    let c = checks::compare("bench matmul", &got, &want);
    assert!(c.rel_error < checks::KERNEL_TOLERANCE, "{c}");
    let err = |m, k, n, x: &[f32]| MatmulCase::new(ctx(), m, k, n, x, &w, &b).err().unwrap().to_string();
    assert_eq!(err(0, k, n, &x), "m: must be 1..=4096, got 0");
    assert_eq!(err(m, k, n, &x[1..]), format!("inp: expected {} floats, got {}", m * k, m * k - 1));
    assert_eq!(err(m, k, 9999, &x), "n: must be 1..=4096, got 9999");
}
