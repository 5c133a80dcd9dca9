//! The f32 CPU backend (issue 10): its SIMD matmuls against the plain f32
//! loops (bit for bit: same order of sums) and the f64 reference (within
//! f32 rounding), at awkward sizes; and a whole model step and lab on it
//! against the f64 reference. Fresh inputs every run; GRADLAB_SEED replays.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use gradlab::checks::{self, compare, model_case, Seed, MODEL_TOLERANCE};
use gradlab::cpu::{self, FastCpuRun, Real, ReferenceRun};
use gradlab::data::shipped_corpus;
use gradlab::lab::{Lab, LabConfig};
use gradlab::model::{LoraConfig, ModelConfig};
use gradlab::rng::Rng;
use gradlab::train::{RunConfig, StepWork, Trainer};
use pollster::block_on;

fn randn(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn simd_matmuls_equal_the_plain_f32_loops_and_track_f64() {
    let seed = Seed::fresh();
    let mut rng = Rng::new(seed.0);
    for trial in 0..24 {
        // sizes around the tile and block edges (4 rows, 8 columns, 128 of K, 256 of N) and the model's
        let pick = |rng: &mut Rng, xs: &[usize]| xs[rng.below(xs.len())] + rng.below(3);
        let n = pick(&mut rng, &[1, 3, 4, 7, 33, 130]);
        let c = pick(&mut rng, &[1, 6, 8, 63, 127, 255, 258]);
        let oc = pick(&mut rng, &[1, 5, 8, 17, 64, 191, 263]);
        let (inp, weight, bias, dout) =
            (randn(&mut rng, n * c), randn(&mut rng, oc * c), randn(&mut rng, oc), randn(&mut rng, n * oc));
        let at = format!("trial {trial}: n {n}, c {c}, oc {oc}");

        let (mut fast, mut plain, mut exact) = (vec![7.0f32; n * oc], vec![0.0f32; n * oc], vec![0.0f64; n * oc]);
        cpu::simd::matmul_forward(&mut fast, &inp, &weight, Some(&bias), n, c, oc);
        cpu::matmul_forward(&mut plain, &inp, &weight, Some(&bias), n, c, oc);
        cpu::matmul_forward(&mut exact, &wide(&inp), &wide(&weight), Some(&wide(&bias)), n, c, oc);
        assert_eq!(bits(&fast), bits(&plain), "forward, {at}");
        let e = compare("forward", &fast, &exact);
        assert!(e.rel_error < 1e-5, "{at}: {e}");

        // backward adds into gradients that already hold something
        let prior = (randn(&mut rng, n * c), randn(&mut rng, oc * c), randn(&mut rng, oc));
        let grads = |(dinp, dw, db): &(Vec<f32>, Vec<f32>, Vec<f32>), fast: bool| {
            let (mut dinp, mut dw, mut db) = (dinp.clone(), dw.clone(), db.clone());
            let f = if fast { cpu::simd::matmul_backward } else { cpu::matmul_backward::<f32> };
            f(&mut dinp, Some(&mut dw), Some(&mut db), &dout, &inp, &weight, n, c, oc);
            (dinp, dw, db)
        };
        let (fast, plain) = (grads(&prior, true), grads(&prior, false));
        let (mut dinp, mut dw, mut db) = (wide(&prior.0), wide(&prior.1), wide(&prior.2));
        cpu::matmul_backward(
            &mut dinp,
            Some(&mut dw),
            Some(&mut db),
            &wide(&dout),
            &wide(&inp),
            &wide(&weight),
            n,
            c,
            oc,
        );
        for (name, f, p, x) in
            [("dinp", &fast.0, &plain.0, &dinp), ("dweight", &fast.1, &plain.1, &dw), ("dbias", &fast.2, &plain.2, &db)]
        {
            assert_eq!(bits(f), bits(p), "{name}, {at}");
            let e = compare(name, f, x);
            assert!(e.rel_error < 1e-5, "{at}: {e}");
        }
    }
}

/// One step's loss sums and gradient, f32 backend against the f64 reference.
fn step_matches_reference(seed: u64, lora: Option<LoraConfig>) {
    let mut rng = Rng::new(seed);
    let (b, t) = (1 + rng.below(4), 5 + rng.below(20));
    let model = ModelConfig { vocab_size: 29 + rng.below(40), block_size: t, n_layer: 2, n_head: 2, n_embd: 18 };
    let case = model_case(seed, model, b, t);
    let config = RunConfig { model, micro_batch: b, grad_accum: 1, seq_len: t, optimizer: Default::default(), lora };
    let mut fast = FastCpuRun::new(&(), config, &case.params).unwrap();
    let mut reference = ReferenceRun::new(&(), config, &case.params).unwrap();
    assert_eq!(fast.describe(), "CPU (f32, SIMD)");
    let scale = [1.0 / case.batch.tokens() as f32];
    let work = StepWork { micro_batches: std::slice::from_ref(&case.batch), scales: &scale };
    // a step first, so the optimizer's f32 path is inside what is compared
    block_on(fast.step(work)).unwrap();
    block_on(reference.step(work)).unwrap();
    let (g32, s32) = block_on(fast.gradients(work)).unwrap();
    let (g64, s64) = block_on(reference.gradients(work)).unwrap();
    let (w32, w64) = (block_on(fast.params()).unwrap(), block_on(reference.params()).unwrap());
    for e in [
        compare("loss sums", &s32, &wide(&s64)),
        compare("gradient", &g32, &wide(&g64)),
        compare("weights", &w32, &wide(&w64)),
    ] {
        checks::log(&e.to_string());
        assert!(e.rel_error < MODEL_TOLERANCE, "b {b}, t {t}, lora {}: {e}", lora.is_some());
    }
}

#[test]
fn a_step_on_f32_matches_the_f64_reference() {
    let seed = Seed::fresh();
    step_matches_reference(seed.0, None);
    step_matches_reference(seed.0 ^ 1, Some(LoraConfig::all_layers(2, seed.0)));
}

#[test]
fn a_lab_on_f32_steps_to_the_same_bits_on_any_number_of_threads() {
    let seed = Seed::fresh();
    let corpus = Arc::new(shipped_corpus("kjv").unwrap());
    // products above the split (2^20 multiply-adds) and below it, three runs
    let model = ModelConfig { block_size: 40, ..ModelConfig::nano() };
    let config = LabConfig::three_way(model, 12, 3, 1.0, seed.0);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
        pool.install(|| {
            let mut lab = Lab::new::<FastCpuRun>(&(), config.clone(), corpus.clone()).unwrap();
            for _ in 0..3 {
                block_on(lab.step()).unwrap();
            }
            let metrics = block_on(lab.flush()).unwrap();
            let weights: Vec<Vec<u32>> = (0..3).map(|run| bits(&block_on(lab.weights(run)).unwrap())).collect();
            let losses: Vec<[u64; 4]> = metrics
                .iter()
                .map(|m| [m.true_loss, m.logged_loss, m.grad_norm, m.weight_distance].map(f64::to_bits))
                .collect();
            (losses, weights)
        })
    };
    let one = on(1);
    assert_eq!(one.0.len(), 9, "three runs, three steps");
    for threads in [2, 3, 4] {
        assert!(on(threads) == one, "{threads} threads step the lab to other bits than one");
    }
}

#[test]
fn a_lab_on_f32_learns_like_the_reference() {
    let seed = Seed::fresh();
    let corpus = Arc::new(shipped_corpus("kjv").unwrap());
    let model = ModelConfig { block_size: 24, ..ModelConfig::nano() };
    let config = LabConfig::three_way(model, 8, 2, 1.0, seed.0);
    let mut fast = Lab::new::<FastCpuRun>(&(), config.clone(), corpus.clone()).unwrap();
    let mut reference = Lab::new::<ReferenceRun>(&(), config, corpus).unwrap();
    for _ in 0..6 {
        block_on(fast.step()).unwrap();
        block_on(reference.step()).unwrap();
    }
    let (f, r) = (block_on(fast.flush()).unwrap(), block_on(reference.flush()).unwrap());
    for (f, r) in f.iter().zip(&r) {
        let (lf, lr) = (f.true_loss, r.true_loss);
        assert!((lf - lr).abs() < 1e-3 * lr, "run {} step {}: f32 loss {lf}, f64 {lr}", f.run, f.step);
    }
    let first = r.iter().filter(|m| m.step == 1).map(|m| m.true_loss).sum::<f64>();
    let last = r.iter().filter(|m| m.step == 6).map(|m| m.true_loss).sum::<f64>();
    assert!(last < first, "six steps lower the loss: {first} -> {last}");
}

/// GELU's tanh in f32 (`Real::gelu_tanh`, an exp of our own) against f64's
/// tanh: within 3e-7, odd, bounded by 1, and NaN in gives NaN out.
#[test]
fn the_f32_gelu_tanh_is_within_a_few_ulps_of_tanh() {
    let seed = Seed::fresh();
    let mut rng = Rng::new(seed.0);
    let mut worst = (0.0f64, 0.0f32);
    // a dense sweep, fresh random points, and the edges
    let sweep = (-200_000..=200_000).map(|i| i as f32 * 1e-4);
    let random: Vec<f32> = (0..200_000).map(|_| (rng.uniform() as f32 - 0.5) * 60.0).collect();
    let edges = [0.0, -0.0, 1e-30, -1e-30, 1e-7, 43.9, 44.0, 44.1, 1e30, -1e30, f32::INFINITY, f32::NEG_INFINITY];
    for u in sweep.chain(random).chain(edges) {
        let got = u.gelu_tanh();
        let err = (got as f64 - (u as f64).tanh()).abs();
        if err > worst.0 {
            worst = (err, u);
        }
        assert!(got.abs() <= 1.0 && got.is_sign_negative() == u.is_sign_negative(), "tanh({u}) = {got}");
        assert_eq!(got.to_bits(), (-(-u).gelu_tanh()).to_bits(), "tanh is odd at {u}");
    }
    assert!(worst.0 < 3e-7, "tanh({}) is {:e} off", worst.1, worst.0);
    assert!(f32::NAN.gelu_tanh().is_nan());
}

/// The f32 `Real::dot` (eight partial sums, then a tree, then the tail)
/// against f64's in-order sum, at every length around its lanes, within the
/// rounding bound of an f32 sum of that many terms.
#[test]
fn the_f32_dot_tracks_f64_at_every_length() {
    let seed = Seed::fresh();
    let mut rng = Rng::new(seed.0);
    for n in 0..=41 {
        // the longer operand is cut to the shorter
        let longer = n + rng.below(3);
        let (x, y) = (randn(&mut rng, n), randn(&mut rng, longer));
        let got = f32::dot(&x, &y) as f64;
        let exact = f64::dot(&wide(&x), &wide(&y[..n]));
        let magnitude: f64 = x.iter().zip(&y).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
        let bound = (n as f64 + 1.0) * f32::EPSILON as f64 * magnitude;
        assert!((got - exact).abs() <= bound, "n {n}: {got} against {exact} (bound {bound:e})");
        assert_eq!(f32::dot(&y, &x).to_bits(), f32::dot(&x, &y).to_bits(), "n {n}: the order of operands");
    }
}

#[test]
fn simd_matmuls_give_the_same_bits_on_any_number_of_threads() {
    let seed = Seed::fresh();
    let mut rng = Rng::new(seed.0);
    for trial in 0..4 {
        // big enough to be split (2^20 multiply-adds), rows that do not divide evenly
        let (n, c, oc) = (901 + rng.below(300), 300 + rng.below(70), 257 + rng.below(140));
        let (inp, weight, bias, dout) =
            (randn(&mut rng, n * c), randn(&mut rng, oc * c), randn(&mut rng, oc), randn(&mut rng, n * oc));
        let prior = (randn(&mut rng, n * c), randn(&mut rng, oc * c));
        let run = || {
            let mut out = vec![0.0f32; n * oc];
            cpu::simd::matmul_forward(&mut out, &inp, &weight, Some(&bias), n, c, oc);
            let (mut dinp, mut dw, mut db) = (prior.0.clone(), prior.1.clone(), vec![0.0f32; oc]);
            cpu::simd::matmul_backward(&mut dinp, Some(&mut dw), Some(&mut db), &dout, &inp, &weight, n, c, oc);
            [out, dinp, dw].map(|v| bits(&v))
        };
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
            pool.install(run)
        };
        let one = on(1);
        for threads in [2, 3, 5] {
            assert!(on(threads) == one, "trial {trial}: n {n}, c {c}, oc {oc}: {threads} threads differ from one");
        }
    }
}
