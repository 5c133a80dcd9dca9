//! The whole GPT-2 forward and backward on the CPU in f64, built from the
//! kernel twins in the same order as `gpu::model`: the reference every GPU
//! gradient is compared with, itself checked against finite differences.
//!
//! Legend: B batch, T time, C channels, V vocabulary, NH heads, L layers.

use super::kernels::*;
use crate::model::{BlockTensor, ParamLayout, TensorView};

/// Activations of one layer, kept for backward.
#[derive(Debug, Clone, Default)]
pub struct LayerActs {
    pub ln1: Vec<f64>,       // [B,T,C]
    pub ln1_mean: Vec<f64>,  // [B,T]
    pub ln1_rstd: Vec<f64>,  // [B,T]
    pub qkv: Vec<f64>,       // [B,T,3C]
    pub att: Vec<f64>,       // [B,NH,T,T]
    pub atty: Vec<f64>,      // [B,T,C]
    pub attproj: Vec<f64>,   // [B,T,C]
    pub residual2: Vec<f64>, // [B,T,C]
    pub ln2: Vec<f64>,       // [B,T,C]
    pub ln2_mean: Vec<f64>,  // [B,T]
    pub ln2_rstd: Vec<f64>,  // [B,T]
    pub fch: Vec<f64>,       // [B,T,4C]
    pub fch_gelu: Vec<f64>,  // [B,T,4C]
    pub fcproj: Vec<f64>,    // [B,T,C]
    pub residual3: Vec<f64>, // [B,T,C]
}

#[derive(Debug, Clone, Default)]
pub struct Activations {
    pub b: usize,
    pub t: usize,
    pub inputs: Vec<u32>,  // [B,T]
    pub targets: Vec<u32>, // [B,T]
    pub encoded: Vec<f64>, // [B,T,C]
    pub layers: Vec<LayerActs>,
    pub lnf: Vec<f64>,      // [B,T,C]
    pub lnf_mean: Vec<f64>, // [B,T]
    pub lnf_rstd: Vec<f64>, // [B,T]
    pub logits: Vec<f64>,   // [B,T,V]
    pub losses: Vec<f64>,   // [B,T]
}

/// Parameters, gradients (same flat layout as the GPU) and the last forward's activations.
pub struct CpuModel {
    pub layout: ParamLayout,
    pub params: Vec<f64>,
    pub grads: Vec<f64>,
    acts: Activations,
}

fn range(v: &TensorView) -> std::ops::Range<usize> {
    v.offset..v.offset + v.len
}

impl CpuModel {
    pub fn new(layout: ParamLayout, params: &[f32]) -> Self {
        Self::from_f64(layout, params.iter().map(|&x| x as f64).collect())
    }

    pub fn from_f64(layout: ParamLayout, params: Vec<f64>) -> Self {
        assert_eq!(params.len(), layout.total, "params must follow the layout");
        let grads = vec![0.0; layout.total];
        Self { layout, params, grads, acts: Activations::default() }
    }

    fn p(&self, v: &TensorView) -> &[f64] {
        &self.params[range(v)]
    }

    pub fn activations(&self) -> &Activations {
        &self.acts
    }

    pub fn logits(&self) -> &[f64] {
        &self.acts.logits
    }

    pub fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }

    /// Forward over B sequences of T positions; returns per-token losses [B*T]
    /// (0 where the target is IGNORE_INDEX) and keeps activations for backward.
    pub fn forward(&mut self, inputs: &[u32], targets: &[u32], b: usize, t: usize) -> Vec<f64> {
        let cfg = self.layout.config;
        let (c, v, nh) = (cfg.n_embd, cfg.vocab_size, cfg.n_head);
        let n = b * t;
        let l = &self.layout;
        let mut a = Activations { b, t, inputs: inputs.to_vec(), targets: targets.to_vec(), ..Default::default() };
        a.encoded = vec![0.0; n * c];
        encoder_forward(&mut a.encoded, inputs, self.p(l.wte()), self.p(l.wpe()), b, t, c);
        for layer in 0..cfg.n_layer {
            use BlockTensor::*;
            let pw = |w: BlockTensor| self.p(l.block(layer, w));
            let x = if layer == 0 { &a.encoded } else { &a.layers[layer - 1].residual3 };
            let mut la = LayerActs {
                ln1: vec![0.0; n * c],
                ln1_mean: vec![0.0; n],
                ln1_rstd: vec![0.0; n],
                qkv: vec![0.0; n * 3 * c],
                att: vec![0.0; b * nh * t * t],
                atty: vec![0.0; n * c],
                attproj: vec![0.0; n * c],
                residual2: vec![0.0; n * c],
                ln2: vec![0.0; n * c],
                ln2_mean: vec![0.0; n],
                ln2_rstd: vec![0.0; n],
                fch: vec![0.0; n * 4 * c],
                fch_gelu: vec![0.0; n * 4 * c],
                fcproj: vec![0.0; n * c],
                residual3: vec![0.0; n * c],
            };
            layernorm_forward(&mut la.ln1, &mut la.ln1_mean, &mut la.ln1_rstd, x, pw(Ln1W), pw(Ln1B), n, c);
            matmul_forward(&mut la.qkv, &la.ln1, pw(AttnW), Some(pw(AttnB)), n, c, 3 * c);
            attention_forward(&mut la.atty, &mut la.att, &la.qkv, b, t, c, nh);
            matmul_forward(&mut la.attproj, &la.atty, pw(AttnProjW), Some(pw(AttnProjB)), n, c, c);
            residual_forward(&mut la.residual2, x, &la.attproj);
            layernorm_forward(&mut la.ln2, &mut la.ln2_mean, &mut la.ln2_rstd, &la.residual2, pw(Ln2W), pw(Ln2B), n, c);
            matmul_forward(&mut la.fch, &la.ln2, pw(FcW), Some(pw(FcB)), n, c, 4 * c);
            gelu_forward(&mut la.fch_gelu, &la.fch);
            matmul_forward(&mut la.fcproj, &la.fch_gelu, pw(FcProjW), Some(pw(FcProjB)), n, 4 * c, c);
            residual_forward(&mut la.residual3, &la.residual2, &la.fcproj);
            a.layers.push(la);
        }
        let last = if cfg.n_layer == 0 { &a.encoded } else { &a.layers[cfg.n_layer - 1].residual3 };
        let (mut lnf, mut lnf_mean, mut lnf_rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
        layernorm_forward(&mut lnf, &mut lnf_mean, &mut lnf_rstd, last, self.p(l.ln_f_w()), self.p(l.ln_f_b()), n, c);
        a.logits = vec![0.0; n * v];
        matmul_forward(&mut a.logits, &lnf, self.p(l.wte()), None, n, c, v);
        (a.lnf, a.lnf_mean, a.lnf_rstd) = (lnf, lnf_mean, lnf_rstd);
        a.losses = vec![0.0; n];
        let mut scratch = vec![0.0; n * v];
        crossentropy_forward_backward(&mut a.losses, &mut scratch, &a.logits, targets, 1.0, n, v);
        let losses = a.losses.clone();
        self.acts = a;
        losses
    }

    /// grads += d(dlogits_scale · Σ_tokens loss)/dparams for the last forward.
    pub fn backward(&mut self, dlogits_scale: f64) {
        let cfg = self.layout.config;
        let (c, v, nh) = (cfg.n_embd, cfg.vocab_size, cfg.n_head);
        let a = &self.acts;
        let (b, t) = (a.b, a.t);
        let n = b * t;
        let l = &self.layout;
        let params = &self.params;
        let grads = &mut self.grads;
        let p = |tv: &TensorView| &params[range(tv)];

        let mut losses = vec![0.0; n];
        let mut dlogits = vec![0.0; n * v];
        crossentropy_forward_backward(&mut losses, &mut dlogits, &a.logits, &a.targets, dlogits_scale, n, v);
        let mut dlnf = vec![0.0; n * c];
        // wte and ln_f are disjoint ranges of `grads`: borrow them one at a time
        matmul_backward(&mut dlnf, &mut grads[range(l.wte())], None, &dlogits, &a.lnf, p(l.wte()), n, c, v);
        let last = if cfg.n_layer == 0 { &a.encoded } else { &a.layers[cfg.n_layer - 1].residual3 };
        let mut dresidual = vec![0.0; n * c];
        let (mut dw, mut db) = (vec![0.0; c], vec![0.0; c]);
        layernorm_backward(
            &mut dresidual,
            &mut dw,
            &mut db,
            &dlnf,
            last,
            p(l.ln_f_w()),
            &a.lnf_mean,
            &a.lnf_rstd,
            n,
            c,
        );
        add(&mut grads[range(l.ln_f_w())], &dw);
        add(&mut grads[range(l.ln_f_b())], &db);

        for layer in (0..cfg.n_layer).rev() {
            use BlockTensor::*;
            let la = &a.layers[layer];
            let x = if layer == 0 { &a.encoded } else { &a.layers[layer - 1].residual3 };
            let tv = |w: BlockTensor| l.block(layer, w);
            // MLP branch: the residual passes dresidual straight to fcproj
            let mut dfch_gelu = vec![0.0; n * 4 * c];
            let (mut dwm, mut dbm) = (vec![0.0; c * 4 * c], vec![0.0; c]);
            matmul_backward(
                &mut dfch_gelu,
                &mut dwm,
                Some(&mut dbm),
                &dresidual,
                &la.fch_gelu,
                p(tv(FcProjW)),
                n,
                4 * c,
                c,
            );
            add(&mut grads[range(tv(FcProjW))], &dwm);
            add(&mut grads[range(tv(FcProjB))], &dbm);
            let mut dfch = vec![0.0; n * 4 * c];
            gelu_backward(&mut dfch, &la.fch, &dfch_gelu);
            let mut dln2 = vec![0.0; n * c];
            let (mut dwf, mut dbf) = (vec![0.0; 4 * c * c], vec![0.0; 4 * c]);
            matmul_backward(&mut dln2, &mut dwf, Some(&mut dbf), &dfch, &la.ln2, p(tv(FcW)), n, c, 4 * c);
            add(&mut grads[range(tv(FcW))], &dwf);
            add(&mut grads[range(tv(FcB))], &dbf);
            let (mut dw, mut db) = (vec![0.0; c], vec![0.0; c]);
            layernorm_backward(
                &mut dresidual,
                &mut dw,
                &mut db,
                &dln2,
                &la.residual2,
                p(tv(Ln2W)),
                &la.ln2_mean,
                &la.ln2_rstd,
                n,
                c,
            );
            add(&mut grads[range(tv(Ln2W))], &dw);
            add(&mut grads[range(tv(Ln2B))], &db);
            // attention branch
            let mut datty = vec![0.0; n * c];
            let (mut dwp, mut dbp) = (vec![0.0; c * c], vec![0.0; c]);
            matmul_backward(&mut datty, &mut dwp, Some(&mut dbp), &dresidual, &la.atty, p(tv(AttnProjW)), n, c, c);
            add(&mut grads[range(tv(AttnProjW))], &dwp);
            add(&mut grads[range(tv(AttnProjB))], &dbp);
            let mut dqkv = vec![0.0; n * 3 * c];
            attention_backward(&mut dqkv, &datty, &la.qkv, &la.att, b, t, c, nh);
            let mut dln1 = vec![0.0; n * c];
            let (mut dwa, mut dba) = (vec![0.0; 3 * c * c], vec![0.0; 3 * c]);
            matmul_backward(&mut dln1, &mut dwa, Some(&mut dba), &dqkv, &la.ln1, p(tv(AttnW)), n, c, 3 * c);
            add(&mut grads[range(tv(AttnW))], &dwa);
            add(&mut grads[range(tv(AttnB))], &dba);
            let (mut dw, mut db) = (vec![0.0; c], vec![0.0; c]);
            layernorm_backward(
                &mut dresidual,
                &mut dw,
                &mut db,
                &dln1,
                x,
                p(tv(Ln1W)),
                &la.ln1_mean,
                &la.ln1_rstd,
                n,
                c,
            );
            add(&mut grads[range(tv(Ln1W))], &dw);
            add(&mut grads[range(tv(Ln1B))], &db);
        }
        let mut dwpe = vec![0.0; l.wpe().len];
        let mut dwte = vec![0.0; l.wte().len];
        encoder_backward(&mut dwte, &mut dwpe, &dresidual, &a.inputs, b, t, c);
        add(&mut grads[range(l.wte())], &dwte);
        add(&mut grads[range(l.wpe())], &dwpe);
    }
}

fn add(dst: &mut [f64], src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use crate::rng::Rng;
    use crate::IGNORE_INDEX;

    fn tiny() -> (ParamLayout, Vec<f64>, Vec<u32>, Vec<u32>) {
        let cfg = ModelConfig { vocab_size: 11, block_size: 7, n_layer: 2, n_head: 2, n_embd: 8 };
        let layout = ParamLayout::new(&cfg);
        let mut rng = Rng::new(5);
        let mut params: Vec<f64> = layout.init(5).iter().map(|&x| x as f64).collect();
        for tv in &layout.tensors {
            for x in &mut params[range(tv)] {
                *x += (rng.uniform() - 0.5) * 0.4;
            }
        }
        let (b, t) = (2, 6);
        let inputs: Vec<u32> = (0..b * t).map(|_| rng.below(11) as u32).collect();
        let mut targets: Vec<u32> = (0..b * t).map(|_| rng.below(11) as u32).collect();
        // the second sequence is short: its last two positions are padding
        targets[t + 4] = IGNORE_INDEX;
        targets[t + 5] = IGNORE_INDEX;
        (layout, params, inputs, targets)
    }

    fn loss(layout: &ParamLayout, params: &[f64], inputs: &[u32], targets: &[u32], scale: f64) -> f64 {
        let mut m = CpuModel::from_f64(layout.clone(), params.to_vec());
        m.forward(inputs, targets, 2, 6).iter().sum::<f64>() * scale
    }

    #[test]
    fn backward_matches_central_differences_for_every_parameter() {
        let (layout, params, inputs, targets) = tiny();
        let scale = 1.0 / 10.0;
        let mut m = CpuModel::from_f64(layout.clone(), params.clone());
        m.forward(&inputs, &targets, 2, 6);
        m.backward(scale);
        let eps = 1e-5;
        let mut worst: f64 = 0.0;
        for tv in &layout.tensors {
            for i in range(tv) {
                let mut plus = params.clone();
                plus[i] += eps;
                let mut minus = params.clone();
                minus[i] -= eps;
                let fd = (loss(&layout, &plus, &inputs, &targets, scale)
                    - loss(&layout, &minus, &inputs, &targets, scale))
                    / (2.0 * eps);
                let an = m.grads[i];
                let err = (fd - an).abs() / (fd.abs() + an.abs()).max(1e-8);
                assert!(
                    err < 1e-5 || (fd - an).abs() < 1e-9,
                    "{} [{}]: analytic {an:e} vs numeric {fd:e}",
                    tv.name,
                    i - tv.offset
                );
                worst = worst.max(err.min((fd - an).abs() * 1e4));
            }
        }
        eprintln!("worst finite-difference mismatch {worst:e} over {} parameters", layout.num_params);
    }

    #[test]
    fn padding_changes_nothing_and_backward_accumulates() {
        let (layout, params, inputs, targets) = tiny();
        let mut m = CpuModel::from_f64(layout.clone(), params.clone());
        let l1 = m.forward(&inputs, &targets, 2, 6);
        m.backward(0.3);
        let g1 = m.grads.clone();
        m.backward(0.3);
        for (a, b) in m.grads.iter().zip(&g1) {
            assert!((a - 2.0 * b).abs() <= 1e-12 * b.abs().max(1.0));
        }
        // inputs after the last real target of sequence 2 only feed padded positions
        let mut inputs2 = inputs.clone();
        inputs2[6 + 5] = (inputs2[6 + 5] + 1) % 11;
        let mut m2 = CpuModel::from_f64(layout, params);
        let l2 = m2.forward(&inputs2, &targets, 2, 6);
        m2.backward(0.3);
        assert_eq!(l1, l2);
        assert!(m2.grads.iter().zip(&g1).all(|(a, b)| (a - b).abs() < 1e-14));
        assert_eq!(l1[6 + 4], 0.0);
    }
}
