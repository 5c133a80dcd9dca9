//! One Rust dispatch function per compute kernel, with the same name as its
//! CPU twin in `crate::cpu`: it fills the kernel's params struct and picks
//! the workgroup count. Not here: what a kernel is (`table`, `params`) or how
//! a dispatch is recorded (`program`).
//!
//! Legend: b sequences per micro-batch, T time, C channels, OC output channels, V vocabulary,
//! NH heads, N = b*T rows. Arguments go outputs, inputs, then dimensions (llm.c
//! order). Backward functions accumulate into parameter gradients (`+=`);
//! zeroing those is the step's job. An activation's gradient is written by
//! its first writer of a backward pass (`GradWrite::Overwrite`, the zeroing
//! folded in) and added to by any later one.
#![allow(clippy::too_many_arguments)]

use super::params::*;
use super::program::{MatmulKernel, ProgramBuilder, RowKernel, View};
use super::table::kernel;

/// Outputs per side of one matmul workgroup's tile (TILE in matmul.wgsl).
const MATMUL_TILE: u32 = 64;
/// Products this short along K go to `matmul_direct`, which stages no tiles
/// (on a software adapter every product does, or its vec4 variants
/// `matmul_dot4` and `matmul_cols4` where the layout allows; on a real GPU
/// every one under TILED_MIN_OUTPUTS); it covers 32 rows by 64 columns of
/// outputs per workgroup, its variants 64 by 64.
const SHORT_K: u32 = 64;
const DIRECT_ROWS: u32 = 32;
const DIRECT_COLS: u32 = 64;
const FOURS_ROWS: u32 = 64;
/// Outputs from which a product with K > SHORT_K goes to the tiled kernel on
/// a real GPU; below it `matmul_direct` was as fast or faster on every shape
/// measured (BENCHMARKS.md).
const TILED_MIN_OUTPUTS: u32 = 1 << 20;
/// Workgroups a product on a real GPU should spread over at least: fewer
/// blocks of outputs than this get K split into slices of at least
/// MIN_K_SLICE (never on a software adapter, whose few cores are busy anyway).
const SPLIT_TARGET_GROUPS: u32 = 512;
const MIN_K_SLICE: u32 = 128;

fn u(x: usize) -> u32 {
    x as u32
}

/// How a backward kernel writes an activation's gradient: the first kernel
/// of a backward pass to write it overwrites whatever the last micro-batch
/// or layer left there, so no dispatch has to zero it first; later ones add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradWrite {
    Overwrite,
    Accumulate,
}

impl GradWrite {
    /// The `accumulate` word of a kernel's params.
    fn accumulate(self) -> u32 {
        u32::from(self == GradWrite::Accumulate)
    }
}

/// Workgroups of 64 invocations covering `n` items.
fn groups64(n: usize) -> u32 {
    u(n.div_ceil(64))
}

/// The matmul kernel's params for c [M,N] (+)= alpha · op(a) [M,K] · op(b) [K,N]:
/// `[m, n, k]`, element (m,k) of op(a) at a[m·a_rs + k·a_cs] given as
/// `[a_rs, a_cs]`, element (k,n) of op(b) at b[k·b_rs + n·b_cs] as `[b_rs, b_cs]`.
fn product([m, n, k]: [usize; 3], [a_rs, a_cs]: [usize; 2], [b_rs, b_cs]: [usize; 2], alpha: f32) -> MatmulParams {
    let (m, n, k, a_rs, a_cs, b_rs, b_cs) = (u(m), u(n), u(k), u(a_rs), u(a_cs), u(b_rs), u(b_cs));
    MatmulParams { m, n, k, a_rs, a_cs, b_rs, b_cs, alpha, k_slice: k, ..Default::default() }
}

/// What an optimizer dispatch is told once for a run: where it works in the
/// flat buffers and its hyperparameters. Per-step values (learning rate, bias
/// corrections) come from the scalars buffer instead.
#[derive(Clone, Copy, Debug)]
pub struct UpdateSettings {
    /// floats in the flat buffer
    pub n: usize,
    /// weight decay applies to [0, decay_end)
    pub decay_end: usize,
    /// scalars[scalars_index..+3] = lr, 1 - beta1^t, 1 - beta2^t
    pub scalars_index: usize,
    /// stats[norm_index] = Σ g²
    pub norm_index: usize,
    /// Adam beta1, or SGD momentum
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// global-norm clipping threshold; 0 disables
    pub max_grad_norm: f32,
}

impl UpdateSettings {
    fn params(&self) -> UpdateParams {
        UpdateParams {
            n: u(self.n),
            decay_end: u(self.decay_end),
            scalars_index: u(self.scalars_index),
            norm_index: u(self.norm_index),
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
            ..Default::default()
        }
    }
}

impl ProgramBuilder {
    /// out [N,OC] = inp [N,C] · weightᵀ (weight [OC,C]) + bias [OC]
    pub fn matmul_forward(
        &mut self,
        out: &View,
        inp: &View,
        weight: &View,
        bias: Option<&View>,
        n: usize,
        c: usize,
        oc: usize,
    ) {
        self.linear(out, None, 0, inp, weight, bias, [n, c, oc]);
    }

    /// out [N,OC] = residual [N,OC] + inp [N,C] · weightᵀ + bias [OC]: a
    /// projection that writes the block's next residual stream itself.
    pub fn matmul_forward_residual(
        &mut self,
        out: &View,
        residual: &View,
        inp: &View,
        weight: &View,
        bias: Option<&View>,
        n: usize,
        c: usize,
        oc: usize,
    ) {
        self.linear(out, Some(residual), MatmulParams::ADD_RESIDUAL, inp, weight, bias, [n, c, oc]);
    }

    /// out [N,OC] = GELU(pre), pre [N,OC] = inp [N,C] · weightᵀ + bias [OC]
    /// (kept for GELU's backward).
    pub fn matmul_forward_gelu(
        &mut self,
        out: &View,
        pre: &View,
        inp: &View,
        weight: &View,
        bias: Option<&View>,
        n: usize,
        c: usize,
        oc: usize,
    ) {
        self.linear(pre, Some(out), MatmulParams::GELU, inp, weight, bias, [n, c, oc]);
    }

    /// A Linear's forward into `out`, with the epilogue `flags` names on `aux`.
    fn linear(
        &mut self,
        out: &View,
        aux: Option<&View>,
        flags: u32,
        inp: &View,
        weight: &View,
        bias: Option<&View>,
        [n, c, oc]: [usize; 3],
    ) {
        let flags = flags | if bias.is_some() { MatmulParams::ADD_BIAS } else { 0 };
        let p = product([n, oc, c], [c, 1], [1, c], 1.0);
        self.matmul_generic(out, inp, weight, bias, aux, &p, flags);
    }

    /// dinp [N,C] (+)= dout [N,OC] · weight [OC,C];  dweight [OC,C] += doutᵀ · inp [N,C];
    /// dbias [OC] += Σ_rows dout
    pub fn matmul_backward(
        &mut self,
        dinp: &View,
        dweight: &View,
        dbias: Option<&View>,
        dout: &View,
        inp: &View,
        weight: &View,
        n: usize,
        c: usize,
        oc: usize,
        dinp_write: GradWrite,
    ) {
        self.matmul_backward_input(dinp, dout, weight, n, c, oc, dinp_write);
        let p = product([oc, c, n], [1, oc], [c, 1], 1.0);
        self.matmul_generic(dweight, dout, inp, None, None, &p, MatmulParams::ACCUMULATE);
        if let Some(dbias) = dbias {
            self.reduce_columns(dbias, dout, n, oc);
        }
    }

    /// dinp [N,C] (+)= dout [N,OC] · weight [OC,C] alone: the backward of a
    /// frozen Linear (LoRA), whose weight and bias get no gradient.
    pub fn matmul_backward_input(
        &mut self,
        dinp: &View,
        dout: &View,
        weight: &View,
        n: usize,
        c: usize,
        oc: usize,
        dinp_write: GradWrite,
    ) {
        let flags = dinp_write.accumulate() * MatmulParams::ACCUMULATE;
        let p = product([n, c, oc], [oc, 1], [c, 1], 1.0);
        self.matmul_generic(dinp, dout, weight, None, None, &p, flags);
    }

    /// LoRA merge: w [OC,C] += scale · b [OC,R] · a [R,C]. Run on a copy of
    /// the frozen weight, it gives the weight the adapted layer computes with,
    /// so forward and dinp need no extra work: merging costs OC·C·R
    /// multiply-adds per step where the unmerged forward costs N·(C+OC)·R
    /// per micro-batch.
    pub fn lora_merge(&mut self, w: &View, a: &View, b: &View, scale: f32, oc: usize, c: usize, r: usize) {
        let p = product([oc, c, r], [r, 1], [c, 1], scale);
        self.matmul_generic(w, b, a, None, None, &p, MatmulParams::ACCUMULATE);
    }

    /// LoRA backward of dout [N,OC] through the adapter (a [R,C], b [OC,R])
    /// of a Linear with input inp [N,C]: h = inp·aᵀ and dh = scale·dout·b
    /// into scratch [N,R]; db [OC,R] += scale·doutᵀ·h; da [R,C] += dhᵀ·inp;
    /// dinp [N,C] += dh·a (left out when dinp is `None`: a merged weight
    /// already carries the adapter's share of it).
    pub fn lora_backward(
        &mut self,
        dinp: Option<&View>,
        da: &View,
        db: &View,
        dout: &View,
        inp: &View,
        a: &View,
        b: &View,
        scale: f32,
        (h, dh): (&View, &View),
        [n, c, oc, r]: [usize; 4],
    ) {
        const ACC: u32 = MatmulParams::ACCUMULATE;
        self.matmul_generic(h, inp, a, None, None, &product([n, r, c], [c, 1], [1, c], 1.0), 0);
        self.matmul_generic(dh, dout, b, None, None, &product([n, r, oc], [oc, 1], [r, 1], scale), 0);
        self.matmul_generic(db, dout, h, None, None, &product([oc, r, n], [1, oc], [r, 1], scale), ACC);
        self.matmul_generic(da, dh, inp, None, None, &product([r, c, n], [1, r], [c, 1], 1.0), ACC);
        if let Some(dinp) = dinp {
            self.matmul_generic(dinp, dh, a, None, None, &product([n, c, r], [r, 1], [c, 1], 1.0), ACC);
        }
    }

    /// c [M,N] (+)= alpha · op(a) [M,K] · op(b) [K,N], with op given by the
    /// strides in `p` and the epilogue by `flags` (the bits on
    /// `MatmulParams`); `aux` is the residual or GELU output the flags name.
    #[allow(clippy::too_many_arguments)]
    fn matmul_generic(
        &mut self,
        c: &View,
        a: &View,
        b: &View,
        bias: Option<&View>,
        aux: Option<&View>,
        p: &MatmulParams,
        flags: u32,
    ) {
        // bias and aux are bound either way; the kernel reads them only when flags say so
        let bias = bias.unwrap_or(a);
        let epilogue = aux.is_some();
        let aux = aux.cloned().unwrap_or_else(|| self.placeholder());
        let direct_groups = [p.n.div_ceil(DIRECT_COLS), p.m.div_ceil(DIRECT_ROWS)];
        let outputs = p.m as usize * p.n as usize;
        let kernel =
            match self.forced_matmul.unwrap_or_else(|| self.pick_matmul(p, direct_groups[0] * direct_groups[1])) {
                // one slice is no split; nor is a forced one whose sum would need too
                // wide a grid, nor one with an epilogue, which needs the whole sum
                MatmulKernel::SplitK(slices) if slices <= 1 || epilogue || groups64(outputs) > self.max_groups => {
                    MatmulKernel::Direct
                }
                MatmulKernel::Dot4 if !p.reads_fours() => MatmulKernel::Direct,
                MatmulKernel::Cols4 if !p.reads_column_fours() => MatmulKernel::Direct,
                kernel => kernel,
            };
        match kernel {
            MatmulKernel::Tiled => {
                let groups = [p.n.div_ceil(MATMUL_TILE), p.m.div_ceil(MATMUL_TILE), 1];
                self.dispatch_specialized(kernel::Matmul, flags, p, &[c, a, b, bias, &aux], groups);
            }
            MatmulKernel::Direct => {
                self.dispatch_specialized(
                    kernel::MatmulDirect,
                    flags,
                    p,
                    &[c, a, b, bias, &aux],
                    [direct_groups[0], direct_groups[1], 1],
                );
            }
            MatmulKernel::Dot4 => {
                self.dispatch_specialized(
                    kernel::MatmulDot4,
                    flags,
                    p,
                    &[c, a, b, bias, &aux],
                    [direct_groups[0], p.m.div_ceil(FOURS_ROWS), 1],
                );
            }
            MatmulKernel::Cols4 => {
                self.dispatch_specialized(
                    kernel::MatmulCols4,
                    flags,
                    p,
                    &[c, a, b, bias, &aux],
                    [direct_groups[0], p.m.div_ceil(FOURS_ROWS), 1],
                );
            }
            MatmulKernel::SplitK(slices) => {
                let k_slice = p.k.div_ceil(slices).max(1);
                let slices = p.k.div_ceil(k_slice).max(1);
                let partials = self.scratch(slices as usize * outputs);
                // the slices overwrite their partials; the sum adds into c as the product would
                let sliced = MatmulParams { k_slice, ..*p };
                let slice_flags = flags & !MatmulParams::ACCUMULATE;
                let groups = [direct_groups[0], direct_groups[1], slices];
                self.dispatch_specialized(
                    kernel::MatmulDirect,
                    slice_flags,
                    &sliced,
                    &[&partials, a, b, bias, &aux],
                    groups,
                );
                let accumulate = flags & MatmulParams::ACCUMULATE != 0;
                self.column_sums_into(c, &partials, slices as usize, outputs, accumulate);
            }
        }
    }

    /// The kernel for a product no check forces: see the constants above.
    fn pick_matmul(&self, p: &MatmulParams, direct_groups: u32) -> MatmulKernel {
        if self.software_adapter {
            return if p.reads_fours() {
                MatmulKernel::Dot4
            } else if p.reads_column_fours() {
                MatmulKernel::Cols4
            } else {
                MatmulKernel::Direct
            };
        }
        if p.k <= SHORT_K {
            return MatmulKernel::Direct;
        }
        if u64::from(p.m) * u64::from(p.n) >= u64::from(TILED_MIN_OUTPUTS) {
            return MatmulKernel::Tiled;
        }
        let slices = split_slices(direct_groups, p.k);
        if slices > 1 {
            MatmulKernel::SplitK(slices)
        } else {
            MatmulKernel::Direct
        }
    }

    /// out [K] += Σ_r inp [R,K], in a fixed order: blocks of 64 rows into a
    /// scratch [ceil(R/64), K], then the blocks into `out`.
    pub fn reduce_columns(&mut self, out: &View, inp: &View, rows: usize, cols: usize) {
        let blocks = rows.div_ceil(ROW_BLOCK).max(1);
        let partials = self.scratch(blocks * cols);
        let p = ColumnSumsParams { rows: u(rows), cols: u(cols), block_rows: u(ROW_BLOCK), accumulate: 0 };
        self.dispatch_grid(kernel::ColumnSums, &p, &[&partials, inp], [groups64(cols), u(blocks), 1]);
        self.column_sums_into(out, &partials, blocks, cols, true);
    }

    /// out [K] (+)= Σ_b partials [b,K] (one block of all rows).
    fn column_sums_into(&mut self, out: &View, partials: &View, blocks: usize, cols: usize, accumulate: bool) {
        let p = ColumnSumsParams {
            rows: u(blocks),
            cols: u(cols),
            block_rows: u(blocks),
            accumulate: u32::from(accumulate),
        };
        self.dispatch_grid(kernel::ColumnSums, &p, &[out, partials], [groups64(cols), 1, 1]);
    }

    /// out[out_index] = Σ inp[0..n], in a fixed order.
    pub fn sum(&mut self, out: &View, out_index: usize, inp: &View, n: usize) {
        let p = SumBlocksParams { n: u(n), block_len: u(n.max(1)), square: 0, out_index: u(out_index) };
        self.dispatch(kernel::SumBlocks, &p, &[out, inp], 1);
    }

    /// out[out_index] = Σ inp[0..n]², in a fixed order: blocks of 4096 into
    /// `partials` [ceil(n/4096)], then one workgroup over the partials.
    pub fn sum_squares(&mut self, out: &View, out_index: usize, partials: &View, inp: &View, n: usize) {
        let blocks = n.div_ceil(SUM_BLOCK).max(1);
        let p = SumBlocksParams { n: u(n), block_len: u(SUM_BLOCK), square: 1, out_index: 0 };
        self.dispatch(kernel::SumBlocks, &p, &[partials, inp], u(blocks));
        self.sum(out, out_index, partials, blocks);
    }

    /// out[out_index] = Σ (a − b)² over [0, n), in a fixed order (blocks into
    /// `partials`, then one workgroup): squared distance between two runs' weights.
    pub fn squared_distance(&mut self, out: &View, out_index: usize, partials: &View, a: &View, b: &View, n: usize) {
        let blocks = n.div_ceil(SUM_BLOCK).max(1);
        let p = SquaredDistanceBlocksParams { n: u(n), block_len: u(SUM_BLOCK), out_index: 0, ..Default::default() };
        self.dispatch(kernel::SquaredDistanceBlocks, &p, &[partials, a, b], u(blocks));
        self.sum(out, out_index, partials, blocks);
    }

    /// losses [N], dlogits [N,V] = softmax(logits) − onehot(targets), times
    /// scalars[scale_index] (dlogits_scale); targets [N] may be IGNORE_INDEX.
    pub fn crossentropy_forward_backward(
        &mut self,
        losses: &View,
        dlogits: &View,
        logits: &View,
        targets: &View,
        scalars: &View,
        scale_index: usize,
        n: usize,
        v: usize,
    ) {
        let p = CrossEntropyParams { n: u(n), v: u(v), scale_index: u(scale_index), ..Default::default() };
        let buffers = [losses, dlogits, logits, targets, scalars];
        match self.row_kernel() {
            RowKernel::Invocation => self.dispatch(kernel::CrossEntropySerial, &p, &buffers, groups64(n)),
            RowKernel::Workgroup => self.dispatch(kernel::CrossEntropy, &p, &buffers, u(n)),
        }
    }

    /// state [2] (window length, tokens picked), window [T], picked [K] updated
    /// by one pick from row state[0]-1 of logits [T,V] with draws [1+K]
    /// (1/temperature, then one uniform per token).
    pub fn sample_next_token(
        &mut self,
        state: &View,
        window: &View,
        picked: &View,
        logits: &View,
        draws: &View,
        t: usize,
        v: usize,
    ) {
        let p = SamplingParams { t: u(t), v: u(v), ..Default::default() };
        self.dispatch(kernel::SampleNextToken, &p, &[state, window, picked, logits, draws], 1);
    }

    /// params, m, v [P] updated by AdamW from grads [P].
    pub fn adamw_update(
        &mut self,
        params: &View,
        grads: &View,
        m: &View,
        v: &View,
        scalars: &View,
        stats: &View,
        s: &UpdateSettings,
    ) {
        self.dispatch(kernel::AdamW, &s.params(), &[params, grads, m, v, scalars, stats], groups64(s.n));
    }

    /// params, velocity [P] updated by SGD with momentum `s.beta1` from grads [P].
    pub fn sgd_update(
        &mut self,
        params: &View,
        grads: &View,
        velocity: &View,
        scalars: &View,
        stats: &View,
        s: &UpdateSettings,
    ) {
        self.dispatch(kernel::Sgd, &s.params(), &[params, grads, velocity, scalars, stats], groups64(s.n));
    }

    /// out [b,T,C] = wte [V,C] [inp [b,T]] + wpe [T,C]
    pub fn encoder_forward(&mut self, out: &View, inp: &View, wte: &View, wpe: &View, b: usize, t: usize, c: usize) {
        // the forward never reads v
        let p = EncoderParams { b: u(b), t: u(t), c: u(c), v: 0 };
        self.dispatch(kernel::EncoderForward, &p, &[out, inp, wte, wpe], groups64(b * t * c));
    }

    /// dwte [V,C] += gathered dout [b,T,C] (positions grouped by token, see
    /// `token_positions`); dwpe [T,C] += Σ_b dout
    pub fn encoder_backward(
        &mut self,
        dwte: &View,
        dwpe: &View,
        dout: &View,
        offsets: &View,
        positions: &View,
        b: usize,
        t: usize,
        c: usize,
        v: usize,
    ) {
        let p = EncoderParams { b: u(b), t: u(t), c: u(c), v: u(v) };
        self.dispatch(kernel::EncoderBackwardWpe, &p, &[dwpe, dout], groups64(t * c));
        self.dispatch(kernel::EncoderBackwardWte, &p, &[dwte, dout, offsets, positions], groups64(v * c));
    }

    /// out [N,C], mean [N], rstd [N] = LayerNorm(inp [N,C]; weight [C], bias [C])
    pub fn layernorm_forward(
        &mut self,
        out: &View,
        mean: &View,
        rstd: &View,
        inp: &View,
        weight: &View,
        bias: &View,
        n: usize,
        c: usize,
    ) {
        let p = LayernormParams { n: u(n), c: u(c), ..Default::default() };
        self.dispatch(kernel::LayernormForward, &p, &[out, mean, rstd, inp, weight, bias], groups64(n));
    }

    /// dinp [N,C] (+)=, dweight [C], dbias [C] += LayerNorm backward of dout [N,C];
    /// `dparams` None (a frozen LayerNorm, under LoRA) computes dinp alone.
    pub fn layernorm_backward(
        &mut self,
        dinp: &View,
        dparams: Option<(&View, &View)>,
        dout: &View,
        inp: &View,
        weight: &View,
        mean: &View,
        rstd: &View,
        n: usize,
        c: usize,
        dinp_write: GradWrite,
    ) {
        let p = LayernormParams { n: u(n), c: u(c), accumulate: dinp_write.accumulate(), ..Default::default() };
        self.dispatch(kernel::LayernormBackward, &p, &[dinp, dout, inp, weight, mean, rstd], groups64(n));
        let Some((dweight, dbias)) = dparams else { return };
        let blocks = n.div_ceil(ROW_BLOCK).max(1);
        let partials = self.scratch(blocks * c);
        self.dispatch_grid(
            kernel::LayernormBackwardDweightPartials,
            &p,
            &[&partials, dout, inp, mean, rstd],
            [groups64(c), u(blocks), 1],
        );
        self.column_sums_into(dweight, &partials, blocks, c, true);
        self.reduce_columns(dbias, dout, n, c);
    }

    /// out [b,T,C], att [b,NH,T,T] = causal attention over qkv [b,T,3C]
    pub fn attention_forward(&mut self, out: &View, att: &View, qkv: &View, b: usize, t: usize, c: usize, nh: usize) {
        let p = AttentionParams { b: u(b), t: u(t), c: u(c), nh: u(nh), ..Default::default() };
        match self.row_kernel() {
            RowKernel::Invocation => {
                self.dispatch(kernel::AttentionForwardSerial, &p, &[out, att, qkv], groups64(b * nh * t.div_ceil(2)))
            }
            RowKernel::Workgroup => self.dispatch(kernel::AttentionForwardRows, &p, &[out, att, qkv], u(b * nh * t)),
        }
    }

    /// A row (attention: a pair of rows, attention_serial.wgsl) per invocation on a software adapter
    /// (no barriers), a row per workgroup elsewhere (attention.wgsl; crossentropy.wgsl holds both),
    /// unless a check forces one.
    fn row_kernel(&self) -> RowKernel {
        self.forced_rows.unwrap_or(if self.software_adapter { RowKernel::Invocation } else { RowKernel::Workgroup })
    }

    /// dqkv [b,T,3C] (+)= attention backward of dout [b,T,C]; dpreatt [b,NH,T,T] is scratch.
    pub fn attention_backward(
        &mut self,
        dqkv: &View,
        dpreatt: &View,
        dout: &View,
        qkv: &View,
        att: &View,
        b: usize,
        t: usize,
        c: usize,
        nh: usize,
        dqkv_write: GradWrite,
    ) {
        let p = AttentionParams {
            b: u(b),
            t: u(t),
            c: u(c),
            nh: u(nh),
            accumulate: dqkv_write.accumulate(),
            ..Default::default()
        };
        let rows = b * nh * t;
        match self.row_kernel() {
            RowKernel::Invocation => {
                // an invocation per pair of rows (attention_serial.wgsl, `Pair`)
                let pairs = groups64(b * nh * t.div_ceil(2));
                self.dispatch(kernel::AttentionBackwardDpreattSerial, &p, &[dpreatt, dout, qkv, att], pairs);
                self.dispatch(kernel::AttentionBackwardDqSerial, &p, &[dqkv, dpreatt, qkv], pairs);
                self.dispatch(kernel::AttentionBackwardDkvSerial, &p, &[dqkv, dpreatt, att, qkv, dout], pairs);
            }
            RowKernel::Workgroup => {
                self.dispatch(kernel::AttentionBackwardDpreattRows, &p, &[dpreatt, dout, qkv, att], u(rows));
                self.dispatch(kernel::AttentionBackwardDq, &p, &[dqkv, dpreatt, qkv], groups64(b * t * c));
                self.dispatch(kernel::AttentionBackwardDkv, &p, &[dqkv, dpreatt, att, qkv, dout], groups64(b * t * c));
            }
        }
    }

    /// dinp [n] (+)= GELU'(inp) · dout
    pub fn gelu_backward(&mut self, dinp: &View, inp: &View, dout: &View, n: usize, dinp_write: GradWrite) {
        let p = GeluParams { n: u(n), accumulate: dinp_write.accumulate(), ..Default::default() };
        self.dispatch(kernel::GeluBackward, &p, &[dinp, inp, dout], groups64(n));
    }
}

/// Rows each block of a column reduction sums (fixed: it is baked into layernorm.wgsl).
const ROW_BLOCK: usize = 64;
pub(crate) const REDUCE_ROWS: usize = ROW_BLOCK;

/// Rows of a product's output one workgroup of `matmul_direct` covers, the
/// fewest of any matmul kernel: a product of M rows spreads M / this
/// workgroups along one dimension of its grid (`plan` checks the device
/// allows that many).
pub(crate) const FEWEST_MATMUL_ROWS: usize = DIRECT_ROWS as usize;

/// Slices K is cut into for a product spread over `direct_groups`
/// workgroups (`pick_matmul`; one or none is no split).
fn split_slices(direct_groups: u32, k: u32) -> u32 {
    SPLIT_TARGET_GROUPS.div_ceil(direct_groups.max(1)).min(k / MIN_K_SLICE)
}

/// Words of partial sums product c [M,N] = a [M,K] · b [K,N] may write to
/// scratch when `pick_matmul` splits its K (on a real GPU): slices × M·N, or
/// 0 where it never splits. A bound `plan` counts a run's memory with.
pub(crate) fn split_partials_bound(m: usize, n: usize, k: usize) -> usize {
    let outputs = m as u64 * n as u64;
    if k <= SHORT_K as usize || outputs >= u64::from(TILED_MIN_OUTPUTS) {
        return 0;
    }
    let groups = (n.div_ceil(DIRECT_COLS as usize) * m.div_ceil(DIRECT_ROWS as usize)).min(u32::MAX as usize) as u32;
    let slices = split_slices(groups, k.min(u32::MAX as usize) as u32);
    if slices <= 1 {
        0
    } else {
        (slices as u64 * outputs) as usize
    }
}

/// Elements each workgroup of the first gradient-norm pass sums.
pub const SUM_BLOCK: usize = 4096;

/// Groups the positions of `tokens` by token id for the embedding backward:
/// returns (offsets [V+1], positions [len]) with the positions of token v at
/// positions[offsets[v]..offsets[v+1]], in increasing order.
pub fn token_positions(tokens: &[u32], vocab: usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; vocab + 1];
    for &tok in tokens {
        offsets[tok as usize + 1] += 1;
    }
    for v in 0..vocab {
        offsets[v + 1] += offsets[v];
    }
    let mut fill = offsets.clone();
    let mut positions = vec![0u32; tokens.len()];
    for (pos, &tok) in tokens.iter().enumerate() {
        positions[fill[tok as usize] as usize] = pos as u32;
        fill[tok as usize] += 1;
    }
    (offsets, positions)
}
