//! The GPT-2 forward and backward pass as a sequence of kernel dispatches.
//!
//! Legend: b sequences per micro-batch (what every dispatch sees), T
//! positions, C channels, V vocabulary, NH heads, L layers. Parameters,
//! gradients and optimizer moments are four flat buffers sharing
//! `ParamLayout`; activations are one buffer each, sized once for (b, T) and
//! reused by every micro-batch of every step.
//! With LoRA (r the rank) the weights are frozen: `params` holds them merged
//! with the adapters (W + s·B·A, `record_merge`), so forward and every
//! activation gradient run unchanged, and backward computes the adapters'
//! gradients in place of the weights'.
//! Not here: which scale a micro-batch's loss gets (see `accum`), or batching
//! and stepping (see `run`).

use crate::model::{AdapterLayout, BlockTensor, ConfigError, LoraConfig, ParamLayout, TensorView};

use super::context::GpuContext;
use super::kernels::GradWrite::{Accumulate, Overwrite};
use super::plan::ModelSizes;
use super::program::{ProgramBuilder, View};

/// Per-layer activations kept from forward for backward.
struct LayerActs {
    ln1: View,       // [b,T,C]
    ln1_mean: View,  // [b,T]
    ln1_rstd: View,  // [b,T]
    qkv: View,       // [b,T,3C]
    att: View,       // [b,NH,T,T]
    atty: View,      // [b,T,C]
    residual2: View, // [b,T,C]
    ln2: View,       // [b,T,C]
    ln2_mean: View,  // [b,T]
    ln2_rstd: View,  // [b,T]
    fch: View,       // [b,T,4C]
    fch_gelu: View,  // [b,T,4C]
    residual3: View, // [b,T,C]
}

/// Scratch gradients of activations, shared by all layers.
struct GradActs {
    dresidual: View, // [b,T,C] gradient of the residual stream, accumulated into
    dln: View,       // [b,T,C]
    datty: View,     // [b,T,C]
    dqkv: View,      // [b,T,3C]
    dpreatt: View,   // [b,NH,T,T]
    dfch: View,      // [b,T,4C]
    dfch_gelu: View, // [b,T,4C]
}

/// Where one micro-batch's tokens sit in the step's token buffer.
#[derive(Clone)]
pub struct TokenViews {
    pub inputs: View,    // [b,T]
    pub targets: View,   // [b,T]
    pub offsets: View,   // [V+1]
    pub positions: View, // [b*T]
}

/// What the optimizer steps: the adapters with LoRA, the weights without.
pub struct Trainable<'a> {
    pub values: &'a wgpu::Buffer,
    /// d loss / d values, accumulated over a step's micro-batches
    pub grads: &'a wgpu::Buffer,
    /// floats in `values`, `grads` and each optimizer moment
    pub len: usize,
    /// weight decay applies to values[..decay_end] (the matrices; with LoRA
    /// every adapter value)
    pub decay_end: usize,
}

/// LoRA's buffers: the frozen weights, the adapters (flat in
/// `AdapterLayout` order), their gradient, and the backward's scratch.
pub struct GpuAdapters {
    pub layout: AdapterLayout,
    /// The weights as loaded; `GpuModel::params` is these merged with the adapters.
    pub base: wgpu::Buffer,
    pub values: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    h: View,  // [b,T,r]
    dh: View, // [b,T,r]
}

impl GpuAdapters {
    fn value(&self, v: &TensorView) -> View {
        View::words(&self.values, v.offset, v.len)
    }
    fn grad(&self, v: &TensorView) -> View {
        View::words(&self.grads, v.offset, v.len)
    }
}

pub struct GpuModel {
    pub layout: ParamLayout,
    pub lora: Option<GpuAdapters>,
    /// b: the micro-batch size the activations are sized for.
    pub b: usize,
    /// Positions per sequence the activations are sized for.
    pub t: usize,
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    layers: Vec<LayerActs>,
    encoded: View,
    lnf: View,
    lnf_mean: View,
    lnf_rstd: View,
    pub logits: View,
    pub dlogits: View,
    pub losses: View,
    grad_acts: GradActs,
}

/// Refuses a buffer the adapter cannot hold, naming it.
pub fn check_buffer(ctx: &GpuContext, what: &str, floats: usize) -> Result<(), ConfigError> {
    let bytes = floats as u64 * 4;
    let limits = [
        (ctx.limits.max_storage_buffer_binding_size, "maxStorageBufferBindingSize"),
        (ctx.limits.max_buffer_size, "maxBufferSize"),
    ];
    for (limit, limit_name) in limits {
        if bytes > limit {
            return Err(ConfigError::BufferTooLarge { what: what.to_string(), bytes, limit, limit_name });
        }
    }
    Ok(())
}

impl GpuModel {
    /// Allocates every buffer of a model for micro-batches of `b` sequences of
    /// `t` positions, each sized by `plan::ModelSizes` and checked against
    /// the adapter's limits first.
    pub fn new(
        ctx: &GpuContext,
        layout: ParamLayout,
        b: usize,
        t: usize,
        lora: Option<LoraConfig>,
    ) -> Result<Self, ConfigError> {
        let cfg = layout.config;
        cfg.validate()?;
        if b == 0 {
            return Err(ConfigError::TooSmall { field: "micro_batch", value: 0.0, min: 1.0 });
        }
        if t < 1 || t > cfg.block_size {
            return Err(ConfigError::Invalid {
                field: "seq_len",
                reason: format!("must be between 1 and the model's context, block_size ({}), got {t}", cfg.block_size),
            });
        }
        let adapters = lora.map(|config| AdapterLayout::new(&layout, config)).transpose()?;
        // every size from the plan, which `check_lab` checks a lab's runs by
        let s = ModelSizes::new(&layout, b, t, adapters.as_ref());
        for p in s.buffers() {
            check_buffer(ctx, p.label, p.words)?;
        }
        let (bt, btc, bt3c, bt4c) = (s.rows, s.rows_c, s.rows_3c, s.rows_4c);
        let buf = |label: &str, floats: usize| View::whole(&ctx.storage(label, floats));
        let lora = match (adapters, s.adapters) {
            (Some(adapters), Some((total, rank))) => Some(GpuAdapters {
                base: ctx.storage("frozen weights", s.params),
                values: ctx.storage("adapters", total),
                grads: ctx.storage("adapter grads", total),
                h: buf("lora h", bt * rank),
                dh: buf("lora dh", bt * rank),
                layout: adapters,
            }),
            _ => None,
        };
        let layers = (0..cfg.n_layer)
            .map(|_| LayerActs {
                ln1: buf("ln1", btc),
                ln1_mean: buf("ln1_mean", bt),
                ln1_rstd: buf("ln1_rstd", bt),
                qkv: buf("qkv", bt3c),
                att: buf("att", s.att),
                atty: buf("atty", btc),
                residual2: buf("residual2", btc),
                ln2: buf("ln2", btc),
                ln2_mean: buf("ln2_mean", bt),
                ln2_rstd: buf("ln2_rstd", bt),
                fch: buf("fch", bt4c),
                fch_gelu: buf("fch_gelu", bt4c),
                residual3: buf("residual3", btc),
            })
            .collect();
        Ok(Self {
            lora,
            b,
            t,
            params: ctx.storage("params", s.params),
            grads: ctx.storage("grads", s.params),
            layers,
            encoded: buf("encoded", btc),
            lnf: buf("lnf", btc),
            lnf_mean: buf("lnf_mean", bt),
            lnf_rstd: buf("lnf_rstd", bt),
            logits: buf("logits", s.logits),
            dlogits: buf("dlogits", s.logits),
            losses: buf("losses", bt),
            grad_acts: GradActs {
                dresidual: buf("dresidual", btc),
                dln: buf("dln", btc),
                datty: buf("datty", btc),
                dqkv: buf("dqkv", bt3c),
                dpreatt: buf("dpreatt", s.att),
                dfch: buf("dfch", bt4c),
                dfch_gelu: buf("dfch_gelu", bt4c),
            },
            layout,
        })
    }

    fn param(&self, view: &crate::model::TensorView) -> View {
        View::words(&self.params, view.offset, view.len)
    }
    fn grad(&self, view: &crate::model::TensorView) -> View {
        View::words(&self.grads, view.offset, view.len)
    }
    fn p(&self, l: usize, which: BlockTensor) -> View {
        self.param(self.layout.block(l, which))
    }
    fn g(&self, l: usize, which: BlockTensor) -> View {
        self.grad(self.layout.block(l, which))
    }

    pub fn trainable(&self) -> Trainable<'_> {
        match &self.lora {
            Some(a) => Trainable { values: &a.values, grads: &a.grads, len: a.layout.total, decay_end: a.layout.total },
            None => Trainable {
                values: &self.params,
                grads: &self.grads,
                len: self.layout.total,
                decay_end: self.layout.decay_end,
            },
        }
    }

    /// With LoRA, records params = base + s·B·A on every adapted weight
    /// (after each update of the adapters; the other weights are the base
    /// already and stay so); nothing without.
    pub fn record_merge(&self, pb: &mut ProgramBuilder) {
        let Some(a) = &self.lora else { return };
        let (r, s) = (a.layout.lora.rank, a.layout.lora.scale() as f32);
        for l in &a.layout.linears {
            pb.copy(&View::words(&a.base, l.weight.offset, l.weight.len), &self.param(&l.weight));
            pb.lora_merge(
                &self.param(&l.weight),
                &a.value(&l.a),
                &a.value(&l.b),
                s,
                l.out_features(),
                l.in_features(),
                r,
            );
        }
    }

    /// Backward of Linear `w` (bias `bias`) of layer `l`: dinp [N,C] = dout [N,OC]·W (its first writer),
    /// then W's and the bias's gradients, or with LoRA the adapter's (the
    /// merged W already carries the adapter's share of dinp).
    fn record_linear_backward(
        &self,
        pb: &mut ProgramBuilder,
        (l, w, bias): (usize, BlockTensor, BlockTensor),
        dinp: &View,
        dout: &View,
        inp: &View,
        n: usize,
    ) {
        let tv = self.layout.block(l, w);
        let (oc, c) = (tv.shape[0], tv.shape[1]);
        let Some(a) = &self.lora else {
            let (dw, db) = (self.g(l, w), self.g(l, bias));
            pb.matmul_backward(dinp, &dw, Some(&db), dout, inp, &self.p(l, w), n, c, oc, Overwrite);
            return;
        };
        pb.matmul_backward_input(dinp, dout, &self.p(l, w), n, c, oc, Overwrite);
        if let Some(lin) = a.layout.find(l, w) {
            let (r, s) = (a.layout.lora.rank, a.layout.lora.scale() as f32);
            let (da, db) = (a.grad(&lin.a), a.grad(&lin.b));
            let (av, bv) = (a.value(&lin.a), a.value(&lin.b));
            pb.lora_backward(None, &da, &db, dout, inp, &av, &bv, s, (&a.h, &a.dh), [n, c, oc, r]);
        }
    }

    /// Records the forward pass up to the logits [b,T,V].
    pub fn record_forward(&self, pb: &mut ProgramBuilder, tokens: &TokenViews) {
        self.record_forward_first(pb, tokens, self.b);
    }

    /// The forward pass of only the first `sequences` sequences of the
    /// micro-batch (every activation is [b,T,..], so they are a prefix):
    /// generating text needs one sequence, not B.
    pub fn record_forward_first(&self, pb: &mut ProgramBuilder, tokens: &TokenViews, sequences: usize) {
        let cfg = self.layout.config;
        let (b, t, c, nh) = (sequences.min(self.b), self.t, cfg.n_embd, cfg.n_head);
        let n = b * t;
        let wte = self.param(self.layout.wte());
        pb.encoder_forward(&self.encoded, &tokens.inputs, &wte, &self.param(self.layout.wpe()), b, t, c);
        for (l, a) in self.layers.iter().enumerate() {
            use BlockTensor::*;
            let x = if l == 0 { &self.encoded } else { &self.layers[l - 1].residual3 };
            pb.layernorm_forward(&a.ln1, &a.ln1_mean, &a.ln1_rstd, x, &self.p(l, Ln1W), &self.p(l, Ln1B), n, c);
            pb.matmul_forward(&a.qkv, &a.ln1, &self.p(l, AttnW), Some(&self.p(l, AttnB)), n, c, 3 * c);
            pb.attention_forward(&a.atty, &a.att, &a.qkv, b, t, c, nh);
            let (w, bias) = (self.p(l, AttnProjW), self.p(l, AttnProjB));
            pb.matmul_forward_residual(&a.residual2, x, &a.atty, &w, Some(&bias), n, c, c);
            pb.layernorm_forward(
                &a.ln2,
                &a.ln2_mean,
                &a.ln2_rstd,
                &a.residual2,
                &self.p(l, Ln2W),
                &self.p(l, Ln2B),
                n,
                c,
            );
            pb.matmul_forward_gelu(&a.fch_gelu, &a.fch, &a.ln2, &self.p(l, FcW), Some(&self.p(l, FcB)), n, c, 4 * c);
            let (w, bias) = (self.p(l, FcProjW), self.p(l, FcProjB));
            pb.matmul_forward_residual(&a.residual3, &a.residual2, &a.fch_gelu, &w, Some(&bias), n, 4 * c, c);
        }
        let last = &self.layers[cfg.n_layer - 1].residual3;
        let (lnf_w, lnf_b) = (self.param(self.layout.ln_f_w()), self.param(self.layout.ln_f_b()));
        pb.layernorm_forward(&self.lnf, &self.lnf_mean, &self.lnf_rstd, last, &lnf_w, &lnf_b, n, c);
        // tied embedding: logits = lnf · wteᵀ
        pb.matmul_forward(&self.logits, &self.lnf, &wte, None, n, c, cfg.vocab_size);
    }

    /// Records the fused cross-entropy: per-token losses and dlogits scaled by
    /// scalars[scale_index].
    pub fn record_loss(&self, pb: &mut ProgramBuilder, tokens: &TokenViews, scalars: &View, scale_index: usize) {
        let n = self.b * self.t;
        let v = self.layout.config.vocab_size;
        pb.crossentropy_forward_backward(
            &self.losses,
            &self.dlogits,
            &self.logits,
            &tokens.targets,
            scalars,
            scale_index,
            n,
            v,
        );
    }

    /// Records the backward pass from dlogits, accumulating into `grads`
    /// (with LoRA: into the adapters' grads; no gradient of the frozen base,
    /// matrices, biases, LayerNorms or embeddings, is computed).
    pub fn record_backward(&self, pb: &mut ProgramBuilder, tokens: &TokenViews) {
        let cfg = self.layout.config;
        let (b, t, c, nh, v) = (self.b, self.t, cfg.n_embd, cfg.n_head, cfg.vocab_size);
        let n = b * t;
        let g = &self.grad_acts;
        let wte = self.param(self.layout.wte());
        let dwte = self.grad(self.layout.wte());
        // each activation gradient's first writer overwrites what the last
        // micro-batch or layer left (no zeroing dispatch); only dresidual,
        // the residual stream's, is added to after that
        // under LoRA the base is frozen: none of its gradients is computed
        let trains_base = self.lora.is_none();
        if trains_base {
            pb.matmul_backward(&g.dln, &dwte, None, &self.dlogits, &self.lnf, &wte, n, c, v, Overwrite);
        } else {
            pb.matmul_backward_input(&g.dln, &self.dlogits, &wte, n, c, v, Overwrite);
        }
        let last = &self.layers[cfg.n_layer - 1].residual3;
        let (lnf_w, dlnf_w, dlnf_b) =
            (self.param(self.layout.ln_f_w()), self.grad(self.layout.ln_f_w()), self.grad(self.layout.ln_f_b()));
        pb.layernorm_backward(
            &g.dresidual,
            trains_base.then_some((&dlnf_w, &dlnf_b)),
            &g.dln,
            last,
            &lnf_w,
            &self.lnf_mean,
            &self.lnf_rstd,
            n,
            c,
            Overwrite,
        );
        for l in (0..cfg.n_layer).rev() {
            use BlockTensor::*;
            let a = &self.layers[l];
            let x = if l == 0 { &self.encoded } else { &self.layers[l - 1].residual3 };
            // MLP branch: dresidual is the gradient of residual3 and of its projection alike
            self.record_linear_backward(pb, (l, FcProjW, FcProjB), &g.dfch_gelu, &g.dresidual, &a.fch_gelu, n);
            pb.gelu_backward(&g.dfch, &a.fch, &g.dfch_gelu, n * 4 * c, Overwrite);
            self.record_linear_backward(pb, (l, FcW, FcB), &g.dln, &g.dfch, &a.ln2, n);
            let (dln2_w, dln2_b) = (self.g(l, Ln2W), self.g(l, Ln2B));
            pb.layernorm_backward(
                &g.dresidual,
                trains_base.then_some((&dln2_w, &dln2_b)),
                &g.dln,
                &a.residual2,
                &self.p(l, Ln2W),
                &a.ln2_mean,
                &a.ln2_rstd,
                n,
                c,
                Accumulate,
            );
            // attention branch
            self.record_linear_backward(pb, (l, AttnProjW, AttnProjB), &g.datty, &g.dresidual, &a.atty, n);
            pb.attention_backward(&g.dqkv, &g.dpreatt, &g.datty, &a.qkv, &a.att, b, t, c, nh, Overwrite);
            self.record_linear_backward(pb, (l, AttnW, AttnB), &g.dln, &g.dqkv, &a.ln1, n);
            let (dln1_w, dln1_b) = (self.g(l, Ln1W), self.g(l, Ln1B));
            pb.layernorm_backward(
                &g.dresidual,
                trains_base.then_some((&dln1_w, &dln1_b)),
                &g.dln,
                x,
                &self.p(l, Ln1W),
                &a.ln1_mean,
                &a.ln1_rstd,
                n,
                c,
                Accumulate,
            );
        }
        if trains_base {
            let dwpe = self.grad(self.layout.wpe());
            pb.encoder_backward(&dwte, &dwpe, &g.dresidual, &tokens.offsets, &tokens.positions, b, t, c, v);
        }
    }
}
