//! Every compute kernel: its WGSL entry point, its bindings, and one Rust
//! dispatch function with the same name as its CPU twin in `crate::cpu`.
//!
//! Legend: B batch, T time, C channels, OC output channels, V vocabulary,
//! NH heads, N = B*T rows. Arguments go outputs, inputs, then dimensions (llm.c
//! order). Backward functions accumulate into gradients (`+=`); zeroing is the
//! step's job.
#![allow(clippy::too_many_arguments)]

use super::program::{ProgramBuilder, View};

const MATMUL: &str = include_str!("../../shaders/matmul.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const CROSSENTROPY: &str = include_str!("../../shaders/crossentropy.wgsl");
const OPTIMIZER: &str = include_str!("../../shaders/optimizer.wgsl");
const ENCODER: &str = include_str!("../../shaders/encoder.wgsl");
const LAYERNORM: &str = include_str!("../../shaders/layernorm.wgsl");
const ATTENTION: &str = include_str!("../../shaders/attention.wgsl");
const GELU: &str = include_str!("../../shaders/gelu.wgsl");
const RESIDUAL: &str = include_str!("../../shaders/residual.wgsl");
const SAMPLING: &str = include_str!("../../shaders/sampling.wgsl");

const SOURCES: [(&str, &str); 10] = [
    ("matmul.wgsl", MATMUL),
    ("reduce.wgsl", REDUCE),
    ("crossentropy.wgsl", CROSSENTROPY),
    ("optimizer.wgsl", OPTIMIZER),
    ("encoder.wgsl", ENCODER),
    ("layernorm.wgsl", LAYERNORM),
    ("attention.wgsl", ATTENTION),
    ("gelu.wgsl", GELU),
    ("residual.wgsl", RESIDUAL),
    ("sampling.wgsl", SAMPLING),
];

/// Read-write or read-only storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    W,
    R,
}
use Access::{R, W};

pub(crate) struct KernelSpec {
    pub source: usize,
    pub entry: &'static str,
    /// (binding, access) in the order dispatch functions pass views.
    pub bindings: &'static [(u32, Access)],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Matmul,
    ColumnSums,
    SumBlocks,
    SquaredDistanceBlocks,
    FillZero,
    CrossEntropy,
    AdamW,
    Sgd,
    EncoderForward,
    EncoderBackwardWpe,
    EncoderBackwardWte,
    LayernormForward,
    LayernormBackward,
    LayernormBackwardDweightPartials,
    AttentionForward,
    AttentionBackwardDpreatt,
    AttentionBackwardDq,
    AttentionBackwardDkv,
    GeluForward,
    GeluBackward,
    ResidualForward,
    SampleNextToken,
}

const ALL: [Kernel; 22] = [
    Kernel::Matmul,
    Kernel::ColumnSums,
    Kernel::SumBlocks,
    Kernel::SquaredDistanceBlocks,
    Kernel::FillZero,
    Kernel::CrossEntropy,
    Kernel::AdamW,
    Kernel::Sgd,
    Kernel::EncoderForward,
    Kernel::EncoderBackwardWpe,
    Kernel::EncoderBackwardWte,
    Kernel::LayernormForward,
    Kernel::LayernormBackward,
    Kernel::LayernormBackwardDweightPartials,
    Kernel::AttentionForward,
    Kernel::AttentionBackwardDpreatt,
    Kernel::AttentionBackwardDq,
    Kernel::AttentionBackwardDkv,
    Kernel::GeluForward,
    Kernel::GeluBackward,
    Kernel::ResidualForward,
    Kernel::SampleNextToken,
];

impl Kernel {
    pub(crate) fn spec(self) -> KernelSpec {
        let (source, entry, bindings): (usize, &'static str, &'static [(u32, Access)]) = match self {
            Kernel::Matmul => (0, "matmul", &[(1, W), (2, R), (3, R), (4, R)]),
            Kernel::ColumnSums => (1, "column_sums", &[(1, W), (2, R)]),
            Kernel::SumBlocks => (1, "sum_blocks", &[(1, W), (2, R)]),
            Kernel::SquaredDistanceBlocks => (1, "squared_distance_blocks", &[(1, W), (2, R), (3, R)]),
            Kernel::FillZero => (1, "fill_zero", &[(1, W)]),
            Kernel::CrossEntropy => (2, "crossentropy_forward_backward", &[(1, W), (2, W), (3, R), (4, R), (5, R)]),
            Kernel::AdamW => (3, "adamw_update", &[(1, W), (2, R), (3, W), (4, W), (5, R), (6, R)]),
            Kernel::Sgd => (3, "sgd_update", &[(1, W), (2, R), (3, W), (5, R), (6, R)]),
            Kernel::EncoderForward => (4, "encoder_forward", &[(1, W), (2, R), (3, R), (4, R)]),
            Kernel::EncoderBackwardWpe => (4, "encoder_backward_wpe", &[(5, W), (6, R)]),
            Kernel::EncoderBackwardWte => (4, "encoder_backward_wte", &[(7, W), (6, R), (8, R), (9, R)]),
            Kernel::LayernormForward => (5, "layernorm_forward", &[(1, W), (2, W), (3, W), (4, R), (5, R), (6, R)]),
            Kernel::LayernormBackward => (5, "layernorm_backward", &[(7, W), (8, R), (4, R), (5, R), (9, R), (10, R)]),
            Kernel::LayernormBackwardDweightPartials => {
                (5, "layernorm_backward_dweight_partials", &[(11, W), (8, R), (4, R), (9, R), (10, R)])
            }
            Kernel::AttentionForward => (6, "attention_forward", &[(1, W), (2, W), (3, R)]),
            Kernel::AttentionBackwardDpreatt => (6, "attention_backward_dpreatt", &[(4, W), (5, R), (3, R), (6, R)]),
            Kernel::AttentionBackwardDq => (6, "attention_backward_dq", &[(7, W), (8, R), (3, R)]),
            Kernel::AttentionBackwardDkv => (6, "attention_backward_dkv", &[(7, W), (8, R), (6, R), (3, R), (5, R)]),
            Kernel::GeluForward => (7, "gelu_forward", &[(1, W), (2, R)]),
            Kernel::GeluBackward => (7, "gelu_backward", &[(3, W), (2, R), (4, R)]),
            Kernel::ResidualForward => (8, "residual_forward", &[(1, W), (2, R), (3, R)]),
            Kernel::SampleNextToken => (9, "sample_next_token", &[(1, W), (2, W), (3, W), (4, R), (5, R)]),
        };
        KernelSpec { source, entry, bindings }
    }
}

/// One compute pipeline and bind-group layout per kernel, compiled once per device.
pub(crate) struct Pipelines {
    layouts: Vec<wgpu::BindGroupLayout>,
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Pipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let modules: Vec<wgpu::ShaderModule> = SOURCES
            .iter()
            .map(|(name, src)| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl((*src).into()),
                })
            })
            .collect();
        let mut layouts = Vec::new();
        let mut pipelines = Vec::new();
        for kernel in ALL {
            let spec = kernel.spec();
            let mut entries = vec![wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }];
            for &(binding, access) in spec.bindings {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: access == R },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(spec.entry),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(spec.entry),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(spec.entry),
                layout: Some(&pipeline_layout),
                module: &modules[spec.source],
                entry_point: Some(spec.entry),
                compilation_options: Default::default(),
                cache: None,
            });
            layouts.push(layout);
            pipelines.push(pipeline);
        }
        Self { layouts, pipelines }
    }

    fn index(kernel: Kernel) -> usize {
        ALL.iter().position(|k| *k == kernel).unwrap_or_default()
    }
    pub(crate) fn layout(&self, kernel: Kernel) -> &wgpu::BindGroupLayout {
        &self.layouts[Self::index(kernel)]
    }
    pub(crate) fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines[Self::index(kernel)]
    }
}

/// Outputs per side of one matmul workgroup's tile (TILE in matmul.wgsl).
const MATMUL_TILE: u32 = 64;

fn u(x: usize) -> u32 {
    x as u32
}

fn f(x: f32) -> u32 {
    x.to_bits()
}

/// Workgroups of 64 invocations covering `n` items.
fn groups64(n: usize) -> u32 {
    u(n.div_ceil(64))
}

/// Hyper-parameters of one optimizer dispatch that stay fixed during a run.
/// Per-step values (learning rate, bias corrections) come from the scalars buffer.
#[derive(Clone, Copy, Debug)]
pub struct UpdateShape {
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
        let flags = if bias.is_some() { 2 } else { 0 };
        let uniform = [u(n), u(oc), u(c), u(c), 1, 1, u(c), flags];
        self.matmul_generic(out, inp, weight, bias, &uniform);
    }

    /// dinp [N,C] += dout [N,OC] · weight [OC,C];  dweight [OC,C] += doutᵀ · inp [N,C];
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
    ) {
        self.matmul_generic(dinp, dout, weight, None, &[u(n), u(c), u(oc), u(oc), 1, u(c), 1, 1]);
        self.matmul_generic(dweight, dout, inp, None, &[u(oc), u(c), u(n), 1, u(oc), u(c), 1, 1]);
        if let Some(dbias) = dbias {
            self.reduce_columns(dbias, dout, n, oc);
        }
    }

    /// c [M,N] (+)= op(a) [M,K] · op(b) [K,N] with the strides in `uniform`
    /// (m, n, k, a_rs, a_cs, b_rs, b_cs, flags).
    fn matmul_generic(&mut self, c: &View, a: &View, b: &View, bias: Option<&View>, uniform: &[u32; 8]) {
        let (m, n) = (uniform[0], uniform[1]);
        let bias = bias.unwrap_or(a);
        self.dispatch_grid(
            super::kernels::Kernel::Matmul,
            uniform,
            &[c, a, b, bias],
            [n.div_ceil(MATMUL_TILE), m.div_ceil(MATMUL_TILE), 1],
        );
    }

    /// out [K] += Σ_r inp [R,K], in a fixed order: blocks of 64 rows into a
    /// scratch [ceil(R/64), K], then the blocks into `out`.
    pub fn reduce_columns(&mut self, out: &View, inp: &View, rows: usize, cols: usize) {
        let blocks = rows.div_ceil(ROW_BLOCK).max(1);
        let partials = self.scratch(blocks * cols);
        self.dispatch_grid(
            Kernel::ColumnSums,
            &[u(rows), u(cols), u(ROW_BLOCK), 0],
            &[&partials, inp],
            [groups64(cols), u(blocks), 1],
        );
        self.column_sums_into(out, &partials, blocks, cols);
    }

    /// out [K] += Σ_b partials [B,K] (one block of all rows).
    fn column_sums_into(&mut self, out: &View, partials: &View, blocks: usize, cols: usize) {
        self.dispatch_grid(
            Kernel::ColumnSums,
            &[u(blocks), u(cols), u(blocks), 1],
            &[out, partials],
            [groups64(cols), 1, 1],
        );
    }

    /// out[out_index] = Σ inp[0..n], in a fixed order.
    pub fn sum(&mut self, out: &View, out_index: usize, inp: &View, n: usize) {
        self.dispatch(Kernel::SumBlocks, &[u(n), u(n.max(1)), 0, u(out_index)], &[out, inp], 1);
    }

    /// out[out_index] = Σ inp[0..n]², in a fixed order: blocks of 4096 into
    /// `partials` [ceil(n/4096)], then one workgroup over the partials.
    pub fn sum_squares(&mut self, out: &View, out_index: usize, partials: &View, inp: &View, n: usize) {
        let blocks = n.div_ceil(SUM_BLOCK).max(1);
        self.dispatch(Kernel::SumBlocks, &[u(n), u(SUM_BLOCK), 1, 0], &[partials, inp], u(blocks));
        self.dispatch(Kernel::SumBlocks, &[u(blocks), u(blocks), 0, u(out_index)], &[out, partials], 1);
    }

    /// out[out_index] = Σ (a − b)² over [0, n), in a fixed order (blocks into
    /// `partials`, then one workgroup): squared distance between two runs' weights.
    pub fn squared_distance(&mut self, out: &View, out_index: usize, partials: &View, a: &View, b: &View, n: usize) {
        let blocks = n.div_ceil(SUM_BLOCK).max(1);
        self.dispatch(Kernel::SquaredDistanceBlocks, &[u(n), u(SUM_BLOCK), 0, 0], &[partials, a, b], u(blocks));
        self.dispatch(Kernel::SumBlocks, &[u(blocks), u(blocks), 0, u(out_index)], &[out, partials], 1);
    }

    /// out [n] = 0
    pub fn fill_zero(&mut self, out: &View, n: usize) {
        self.dispatch(Kernel::FillZero, &[u(n), 0, 0, 0], &[out], groups64(n));
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
        self.dispatch(
            Kernel::CrossEntropy,
            &[u(n), u(v), u(scale_index), 0],
            &[losses, dlogits, logits, targets, scalars],
            u(n),
        );
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
        self.dispatch(Kernel::SampleNextToken, &[u(t), u(v), 0, 0], &[state, window, picked, logits, draws], 1);
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
        s: &UpdateShape,
    ) {
        let uniform = update_uniform(s);
        self.dispatch(Kernel::AdamW, &uniform, &[params, grads, m, v, scalars, stats], groups64(s.n));
    }

    /// params, velocity [P] updated by SGD with momentum `s.beta1` from grads [P].
    pub fn sgd_update(
        &mut self,
        params: &View,
        grads: &View,
        velocity: &View,
        scalars: &View,
        stats: &View,
        s: &UpdateShape,
    ) {
        let uniform = update_uniform(s);
        self.dispatch(Kernel::Sgd, &uniform, &[params, grads, velocity, scalars, stats], groups64(s.n));
    }

    /// out [B,T,C] = wte [V,C] [inp [B,T]] + wpe [T,C]
    pub fn encoder_forward(&mut self, out: &View, inp: &View, wte: &View, wpe: &View, b: usize, t: usize, c: usize) {
        self.dispatch(Kernel::EncoderForward, &[u(b), u(t), u(c), 0], &[out, inp, wte, wpe], groups64(b * t * c));
    }

    /// dwte [V,C] += gathered dout [B,T,C] (positions grouped by token, see
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
        let uniform = [u(b), u(t), u(c), u(v)];
        self.dispatch(Kernel::EncoderBackwardWpe, &uniform, &[dwpe, dout], groups64(t * c));
        self.dispatch(Kernel::EncoderBackwardWte, &uniform, &[dwte, dout, offsets, positions], groups64(v * c));
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
        self.dispatch(
            Kernel::LayernormForward,
            &[u(n), u(c), 0, 0],
            &[out, mean, rstd, inp, weight, bias],
            groups64(n),
        );
    }

    /// dinp [N,C], dweight [C], dbias [C] += LayerNorm backward of dout [N,C]
    pub fn layernorm_backward(
        &mut self,
        dinp: &View,
        dweight: &View,
        dbias: &View,
        dout: &View,
        inp: &View,
        weight: &View,
        mean: &View,
        rstd: &View,
        n: usize,
        c: usize,
    ) {
        let uniform = [u(n), u(c), 0, 0];
        self.dispatch(Kernel::LayernormBackward, &uniform, &[dinp, dout, inp, weight, mean, rstd], groups64(n));
        let blocks = n.div_ceil(ROW_BLOCK).max(1);
        let partials = self.scratch(blocks * c);
        self.dispatch_grid(
            Kernel::LayernormBackwardDweightPartials,
            &uniform,
            &[&partials, dout, inp, mean, rstd],
            [groups64(c), u(blocks), 1],
        );
        self.column_sums_into(dweight, &partials, blocks, c);
        self.reduce_columns(dbias, dout, n, c);
    }

    /// out [B,T,C], att [B,NH,T,T] = causal attention over qkv [B,T,3C]
    pub fn attention_forward(&mut self, out: &View, att: &View, qkv: &View, b: usize, t: usize, c: usize, nh: usize) {
        self.dispatch(Kernel::AttentionForward, &[u(b), u(t), u(c), u(nh)], &[out, att, qkv], groups64(b * nh * t));
    }

    /// dqkv [B,T,3C] += attention backward of dout [B,T,C]; dpreatt [B,NH,T,T] is scratch.
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
    ) {
        let uniform = [u(b), u(t), u(c), u(nh)];
        self.dispatch(Kernel::AttentionBackwardDpreatt, &uniform, &[dpreatt, dout, qkv, att], groups64(b * nh * t));
        self.dispatch(Kernel::AttentionBackwardDq, &uniform, &[dqkv, dpreatt, qkv], groups64(b * t * c));
        self.dispatch(Kernel::AttentionBackwardDkv, &uniform, &[dqkv, dpreatt, att, qkv, dout], groups64(b * t * c));
    }

    /// out [n] = GELU(inp [n])
    pub fn gelu_forward(&mut self, out: &View, inp: &View, n: usize) {
        self.dispatch(Kernel::GeluForward, &[u(n), 0, 0, 0], &[out, inp], groups64(n));
    }

    /// dinp [n] += GELU'(inp) · dout
    pub fn gelu_backward(&mut self, dinp: &View, inp: &View, dout: &View, n: usize) {
        self.dispatch(Kernel::GeluBackward, &[u(n), 0, 0, 0], &[dinp, inp, dout], groups64(n));
    }

    /// out [n] = inp1 + inp2
    pub fn residual_forward(&mut self, out: &View, inp1: &View, inp2: &View, n: usize) {
        self.dispatch(Kernel::ResidualForward, &[u(n), 0, 0, 0], &[out, inp1, inp2], groups64(n));
    }
}

/// Rows each block of a column reduction sums (fixed: it is baked into layernorm.wgsl).
const ROW_BLOCK: usize = 64;

/// Elements each workgroup of the first gradient-norm pass sums.
pub const SUM_BLOCK: usize = 4096;

fn update_uniform(s: &UpdateShape) -> [u32; 12] {
    [
        u(s.n),
        u(s.decay_end),
        u(s.scalars_index),
        u(s.norm_index),
        f(s.beta1),
        f(s.beta2),
        f(s.eps),
        f(s.weight_decay),
        f(s.max_grad_norm),
        0,
        0,
        0,
    ]
}

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
