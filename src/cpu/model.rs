//! The whole GPT-2 forward and backward on the CPU, built from the kernel
//! twins in the same order as `gpu::model`. In f64 it is the reference every
//! GPU gradient is compared with, itself checked against finite differences;
//! in f32 it is the fast CPU backend's model.
//!
//! Legend: b sequences per micro-batch, T time, C channels, V vocabulary, NH heads, L layers.

use super::kernels::*;
use super::Real;
use crate::model::{AdapterLayout, BlockTensor, ParamLayout, TensorView};

/// Activations of one layer, kept for backward.
#[derive(Debug, Clone, Default)]
pub struct LayerActs<F> {
    pub ln1: Vec<F>,       // [b,T,C]
    pub ln1_mean: Vec<F>,  // [b,T]
    pub ln1_rstd: Vec<F>,  // [b,T]
    pub qkv: Vec<F>,       // [b,T,3C]
    pub att: Vec<F>,       // [b,NH,T,T]
    pub atty: Vec<F>,      // [b,T,C]
    pub attproj: Vec<F>,   // [b,T,C]
    pub residual2: Vec<F>, // [b,T,C]
    pub ln2: Vec<F>,       // [b,T,C]
    pub ln2_mean: Vec<F>,  // [b,T]
    pub ln2_rstd: Vec<F>,  // [b,T]
    pub fch: Vec<F>,       // [b,T,4C]
    pub fch_gelu: Vec<F>,  // [b,T,4C]
    pub fcproj: Vec<F>,    // [b,T,C]
    pub residual3: Vec<F>, // [b,T,C]
}

#[derive(Debug, Clone, Default)]
pub struct Activations<F> {
    pub b: usize,
    pub t: usize,
    pub inputs: Vec<u32>,  // [b,T]
    pub targets: Vec<u32>, // [b,T]
    pub encoded: Vec<F>,   // [b,T,C]
    pub layers: Vec<LayerActs<F>>,
    pub lnf: Vec<F>,      // [b,T,C]
    pub lnf_mean: Vec<F>, // [b,T]
    pub lnf_rstd: Vec<F>, // [b,T]
    pub logits: Vec<F>,   // [b,T,V]
    pub losses: Vec<F>,   // [b,T]
}

/// LoRA adapters on a frozen model: their values and gradients, flat in
/// `AdapterLayout` order.
#[derive(Debug, Clone)]
pub struct CpuAdapters<F> {
    pub layout: AdapterLayout,
    pub params: Vec<F>,
    pub grads: Vec<F>,
}

/// Parameters, gradients (same flat layout as the GPU) and the last forward's
/// activations; with `lora`, the parameters are frozen and only the adapters
/// get gradients.
pub struct CpuModelOf<F> {
    pub layout: ParamLayout,
    pub params: Vec<F>,
    pub grads: Vec<F>,
    pub lora: Option<CpuAdapters<F>>,
    acts: Activations<F>,
}

fn range(v: &TensorView) -> std::ops::Range<usize> {
    v.range()
}

/// The f64 reference model.
pub type CpuModel = CpuModelOf<f64>;

impl<F: Real> CpuModelOf<F> {
    pub fn new(layout: ParamLayout, params: &[f32]) -> Self {
        Self::from_params(layout, params.iter().map(|&x| F::of(x as f64)).collect())
    }

    pub fn from_params(layout: ParamLayout, params: Vec<F>) -> Self {
        assert_eq!(params.len(), layout.total, "params must follow the layout");
        let grads = vec![F::zero(); layout.total];
        Self { layout, params, grads, lora: None, acts: Activations::default() }
    }

    /// Freezes the weights and trains LoRA adapters (`adapters` flat in
    /// `layout` order) on them instead.
    pub fn with_adapters(mut self, layout: AdapterLayout, adapters: &[f32]) -> Self {
        assert_eq!(adapters.len(), layout.total, "adapters must follow their layout");
        let grads = vec![F::zero(); layout.total];
        self.lora = Some(CpuAdapters { layout, params: adapters.iter().map(|&x| F::of(x as f64)).collect(), grads });
        self
    }

    /// The weights the model computes with: the base, plus s·B·A on every
    /// adapted Linear (a merged copy under LoRA; the weights themselves without).
    pub fn effective_params(&self) -> std::borrow::Cow<'_, [F]> {
        let Some(lora) = &self.lora else { return std::borrow::Cow::Borrowed(&self.params) };
        let mut out = self.params.clone();
        let (r, s) = (lora.layout.lora.rank, lora.layout.lora.scale());
        for l in &lora.layout.linears {
            let (a, b) = (&lora.params[range(&l.a)], &lora.params[range(&l.b)]);
            lora_merge(&mut out[range(&l.weight)], a, b, s, l.out_features(), l.in_features(), r);
        }
        std::borrow::Cow::Owned(out)
    }

    /// out += s·(inp·Aᵀ)·Bᵀ if `which` of `layer` carries an adapter.
    fn adapter_forward(&self, layer: usize, which: BlockTensor, out: &mut [F], inp: &[F], n: usize) {
        let Some(lora) = &self.lora else { return };
        let Some(l) = lora.layout.find(layer, which) else { return };
        let (r, s) = (lora.layout.lora.rank, lora.layout.lora.scale());
        let (a, b) = (&lora.params[range(&l.a)], &lora.params[range(&l.b)]);
        lora_forward(out, inp, a, b, s, n, l.in_features(), l.out_features(), r);
    }

    fn p(&self, v: &TensorView) -> &[F] {
        &self.params[range(v)]
    }

    pub fn activations(&self) -> &Activations<F> {
        &self.acts
    }

    pub fn logits(&self) -> &[F] {
        &self.acts.logits
    }

    pub fn zero_grad(&mut self) {
        self.grads.fill(F::zero());
        if let Some(a) = &mut self.lora {
            a.grads.fill(F::zero());
        }
    }

    /// Forward over B sequences of T positions; returns per-token losses [b*T]
    /// (0 where the target is IGNORE_INDEX) and keeps activations for backward.
    pub fn forward(&mut self, inputs: &[u32], targets: &[u32], b: usize, t: usize) -> Vec<F> {
        let cfg = self.layout.config;
        let (c, v, nh) = (cfg.n_embd, cfg.vocab_size, cfg.n_head);
        let n = b * t;
        let l = &self.layout;
        let mut a = Activations { b, t, inputs: inputs.to_vec(), targets: targets.to_vec(), ..Default::default() };
        a.encoded = vec![F::zero(); n * c];
        encoder_forward(&mut a.encoded, inputs, self.p(l.wte()), self.p(l.wpe()), b, t, c);
        for layer in 0..cfg.n_layer {
            use BlockTensor::*;
            let pw = |w: BlockTensor| self.p(l.block(layer, w));
            let x = if layer == 0 { &a.encoded } else { &a.layers[layer - 1].residual3 };
            let mut la = LayerActs {
                ln1: vec![F::zero(); n * c],
                ln1_mean: vec![F::zero(); n],
                ln1_rstd: vec![F::zero(); n],
                qkv: vec![F::zero(); n * 3 * c],
                att: vec![F::zero(); b * nh * t * t],
                atty: vec![F::zero(); n * c],
                attproj: vec![F::zero(); n * c],
                residual2: vec![F::zero(); n * c],
                ln2: vec![F::zero(); n * c],
                ln2_mean: vec![F::zero(); n],
                ln2_rstd: vec![F::zero(); n],
                fch: vec![F::zero(); n * 4 * c],
                fch_gelu: vec![F::zero(); n * 4 * c],
                fcproj: vec![F::zero(); n * c],
                residual3: vec![F::zero(); n * c],
            };
            layernorm_forward(&mut la.ln1, &mut la.ln1_mean, &mut la.ln1_rstd, x, pw(Ln1W), pw(Ln1B), n, c);
            F::matmul_forward(&mut la.qkv, &la.ln1, pw(AttnW), Some(pw(AttnB)), n, c, 3 * c);
            self.adapter_forward(layer, AttnW, &mut la.qkv, &la.ln1, n);
            attention_forward(&mut la.atty, &mut la.att, &la.qkv, b, t, c, nh);
            F::matmul_forward(&mut la.attproj, &la.atty, pw(AttnProjW), Some(pw(AttnProjB)), n, c, c);
            self.adapter_forward(layer, AttnProjW, &mut la.attproj, &la.atty, n);
            residual_forward(&mut la.residual2, x, &la.attproj);
            layernorm_forward(&mut la.ln2, &mut la.ln2_mean, &mut la.ln2_rstd, &la.residual2, pw(Ln2W), pw(Ln2B), n, c);
            F::matmul_forward(&mut la.fch, &la.ln2, pw(FcW), Some(pw(FcB)), n, c, 4 * c);
            self.adapter_forward(layer, FcW, &mut la.fch, &la.ln2, n);
            gelu_forward(&mut la.fch_gelu, &la.fch);
            F::matmul_forward(&mut la.fcproj, &la.fch_gelu, pw(FcProjW), Some(pw(FcProjB)), n, 4 * c, c);
            self.adapter_forward(layer, FcProjW, &mut la.fcproj, &la.fch_gelu, n);
            residual_forward(&mut la.residual3, &la.residual2, &la.fcproj);
            a.layers.push(la);
        }
        let last = if cfg.n_layer == 0 { &a.encoded } else { &a.layers[cfg.n_layer - 1].residual3 };
        let (mut lnf, mut lnf_mean, mut lnf_rstd) = (vec![F::zero(); n * c], vec![F::zero(); n], vec![F::zero(); n]);
        layernorm_forward(&mut lnf, &mut lnf_mean, &mut lnf_rstd, last, self.p(l.ln_f_w()), self.p(l.ln_f_b()), n, c);
        a.logits = vec![F::zero(); n * v];
        F::matmul_forward(&mut a.logits, &lnf, self.p(l.wte()), None, n, c, v);
        (a.lnf, a.lnf_mean, a.lnf_rstd) = (lnf, lnf_mean, lnf_rstd);
        a.losses = vec![F::zero(); n];
        let mut scratch = vec![F::zero(); n * v];
        crossentropy_forward_backward(&mut a.losses, &mut scratch, &a.logits, targets, 1.0, n, v);
        let losses = a.losses.clone();
        self.acts = a;
        losses
    }

    /// grads += d(dlogits_scale · Σ_tokens loss)/dparams for the last forward
    /// (with LoRA: the adapters' grads; the frozen matrices and embeddings get
    /// none, while LayerNorm's are still computed into `grads`, unused).
    pub fn backward(&mut self, dlogits_scale: f64) {
        let cfg = self.layout.config;
        let (c, v, nh) = (cfg.n_embd, cfg.vocab_size, cfg.n_head);
        let a = &self.acts;
        let (b, t) = (a.b, a.t);
        let n = b * t;
        let l = &self.layout;
        let params = &self.params;
        let grads = &mut self.grads;
        let lora = &mut self.lora;
        let p = |tv: &TensorView| &params[range(tv)];

        let mut losses = vec![F::zero(); n];
        let mut dlogits = vec![F::zero(); n * v];
        crossentropy_forward_backward(&mut losses, &mut dlogits, &a.logits, &a.targets, dlogits_scale, n, v);
        let mut dlnf = vec![F::zero(); n * c];
        let dwte = if lora.is_some() { None } else { Some(&mut grads[range(l.wte())]) };
        F::matmul_backward(&mut dlnf, dwte, None, &dlogits, &a.lnf, p(l.wte()), n, c, v);
        let last = if cfg.n_layer == 0 { &a.encoded } else { &a.layers[cfg.n_layer - 1].residual3 };
        let mut dresidual = vec![F::zero(); n * c];
        let (mut dw, mut db) = (vec![F::zero(); c], vec![F::zero(); c]);
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
            let mut dfch_gelu = vec![F::zero(); n * 4 * c];
            let io = (&mut dfch_gelu[..], &dresidual[..], &la.fch_gelu[..], n);
            linear_backward(grads, lora.as_mut(), params, l, (layer, FcProjW, FcProjB), io);
            let mut dfch = vec![F::zero(); n * 4 * c];
            gelu_backward(&mut dfch, &la.fch, &dfch_gelu);
            let mut dln2 = vec![F::zero(); n * c];
            linear_backward(grads, lora.as_mut(), params, l, (layer, FcW, FcB), (&mut dln2, &dfch, &la.ln2, n));
            let (mut dw, mut db) = (vec![F::zero(); c], vec![F::zero(); c]);
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
            let mut datty = vec![F::zero(); n * c];
            let io = (&mut datty[..], &dresidual[..], &la.atty[..], n);
            linear_backward(grads, lora.as_mut(), params, l, (layer, AttnProjW, AttnProjB), io);
            let mut dqkv = vec![F::zero(); n * 3 * c];
            attention_backward(&mut dqkv, &datty, &la.qkv, &la.att, b, t, c, nh);
            let mut dln1 = vec![F::zero(); n * c];
            linear_backward(grads, lora.as_mut(), params, l, (layer, AttnW, AttnB), (&mut dln1, &dqkv, &la.ln1, n));
            let (mut dw, mut db) = (vec![F::zero(); c], vec![F::zero(); c]);
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
        if lora.is_none() {
            let mut dwpe = vec![F::zero(); l.wpe().len];
            let mut dwte = vec![F::zero(); l.wte().len];
            encoder_backward(&mut dwte, &mut dwpe, &dresidual, &a.inputs, b, t, c);
            add(&mut grads[range(l.wte())], &dwte);
            add(&mut grads[range(l.wpe())], &dwpe);
        }
    }
}

/// Backward of one Linear (weight `w`, bias `bias` of `layer`) from dout [N,OC]:
/// dinp [N,C] += dout·W, then dW and dbias (full training) or, when the
/// Linear carries an adapter, its dA and dB (LoRA; the weight is frozen).
fn linear_backward<F: Real>(
    grads: &mut [F],
    lora: Option<&mut CpuAdapters<F>>,
    params: &[F],
    layout: &ParamLayout,
    (layer, w, bias): (usize, BlockTensor, BlockTensor),
    (dinp, dout, inp, n): (&mut [F], &[F], &[F], usize),
) {
    let weight = layout.block(layer, w);
    let (oc, c) = (weight.shape[0], weight.shape[1]);
    let Some(adapters) = lora else {
        let db = &mut vec![F::zero(); oc];
        F::matmul_backward(
            dinp,
            Some(&mut grads[range(weight)]),
            Some(db),
            dout,
            inp,
            &params[range(weight)],
            n,
            c,
            oc,
        );
        add(&mut grads[range(layout.block(layer, bias))], db);
        return;
    };
    F::matmul_backward(dinp, None, None, dout, inp, &params[range(weight)], n, c, oc);
    let Some(lin) = adapters.layout.find(layer, w) else { return };
    let (r, s) = (adapters.layout.lora.rank, adapters.layout.lora.scale());
    let (ra, rb) = (range(&lin.a), range(&lin.b));
    let (mut da, mut db) = (vec![F::zero(); lin.a.len], vec![F::zero(); lin.b.len]);
    let (pa, pb) = (&adapters.params[ra.clone()], &adapters.params[rb.clone()]);
    lora_backward(Some(dinp), &mut da, &mut db, dout, inp, pa, pb, s, n, c, oc, r);
    add(&mut adapters.grads[ra], &da);
    add(&mut adapters.grads[rb], &db);
}

fn add<F: Real>(dst: &mut [F], src: &[F]) {
    for (d, &s) in dst.iter_mut().zip(src) {
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
        let mut m = CpuModel::from_params(layout.clone(), params.to_vec());
        m.forward(inputs, targets, 2, 6).iter().sum::<f64>() * scale
    }

    #[test]
    fn backward_matches_central_differences_for_every_parameter() {
        let (layout, params, inputs, targets) = tiny();
        let scale = 1.0 / 10.0;
        let mut m = CpuModel::from_params(layout.clone(), params.clone());
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
    fn lora_backward_matches_central_differences_and_freezes_the_base() {
        use crate::model::{AdapterLayout, LoraConfig};
        let (layout, params, inputs, targets) = tiny();
        // two of the four Linears, so an unadapted one sits between adapted ones
        let lora = LoraConfig { rank: 3, alpha: 4.5, targets: 0b1010, seed: 3 };
        let adapters = AdapterLayout::new(&layout, lora).unwrap();
        // B = 0 would make every dA zero: start from a trained-looking adapter
        let mut rng = Rng::new(8);
        let values: Vec<f64> = adapters.init().iter().map(|&x| x as f64 + (rng.uniform() - 0.5) * 0.6).collect();
        let scale = 1.0 / 10.0;
        let model = |a: &[f64]| {
            let mut m =
                CpuModel::from_params(layout.clone(), params.clone()).with_adapters(adapters.clone(), &adapters.init());
            m.lora.as_mut().unwrap().params = a.to_vec();
            m
        };
        let mut m = model(&values);
        m.forward(&inputs, &targets, 2, 6);
        m.backward(scale);
        let vector =
            |i: usize| layout.tensors.iter().any(|t| t.shape.len() == 1 && (t.offset..t.offset + t.len).contains(&i));
        assert!(
            m.grads.iter().enumerate().all(|(i, &g)| g == 0.0 || vector(i)),
            "no matrix of the frozen model gets a gradient"
        );
        let grads = m.lora.as_ref().unwrap().grads.clone();
        let eps = 1e-5;
        for tv in adapters.tensors() {
            for i in tv.offset..tv.offset + tv.len {
                let at = |d: f64| {
                    let mut v = values.clone();
                    v[i] += d;
                    model(&v).forward(&inputs, &targets, 2, 6).iter().sum::<f64>() * scale
                };
                let fd = (at(eps) - at(-eps)) / (2.0 * eps);
                let an = grads[i];
                assert!(
                    (fd - an).abs() < 1e-9 + 1e-5 * an.abs(),
                    "{} [{}]: analytic {an:e} vs numeric {fd:e}",
                    tv.name,
                    i - tv.offset
                );
            }
        }
        // The adapted model is the merged model: its forward is the base forward at W + s·B·A.
        let mut merged = CpuModel::from_params(layout.clone(), m.effective_params().into_owned());
        let direct = model(&values).forward(&inputs, &targets, 2, 6);
        let via_merge = merged.forward(&inputs, &targets, 2, 6);
        for (x, y) in direct.iter().zip(&via_merge) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }

    #[test]
    fn padding_changes_nothing_and_backward_accumulates() {
        let (layout, params, inputs, targets) = tiny();
        let mut m = CpuModel::from_params(layout.clone(), params.clone());
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
        let mut m2 = CpuModel::from_params(layout, params);
        let l2 = m2.forward(&inputs2, &targets, 2, 6);
        m2.backward(0.3);
        assert_eq!(l1, l2);
        assert!(m2.grads.iter().zip(&g1).all(|(a, b)| (a - b).abs() < 1e-14));
        assert_eq!(l1[6 + 4], 0.0);
    }
}
