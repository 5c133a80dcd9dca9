//! A recorded sequence of GPU work, built once per run and replayed every step.
//!
//! Bind groups and the uniform arena (each dispatch's params struct) are
//! created when the program is built; a step only writes the batch and its
//! scalars into existing buffers, encodes the program and submits once.
//! Creating WebGPU objects per step is slow in browsers, so nothing here is
//! made twice.
//! Not here: the dispatch function of each kernel (`kernels`), which call the
//! typed `dispatch` below.

use std::sync::Arc;

use super::context::{GpuContext, GpuError};
use super::pipelines::Pipelines;
use super::table::{KernelDecl, KernelId};

/// A range of a buffer, in bytes, as a kernel sees it.
#[derive(Clone, Debug)]
pub struct View {
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

impl View {
    pub fn whole(buffer: &wgpu::Buffer) -> Self {
        Self { buffer: buffer.clone(), offset: 0, size: buffer.size() }
    }
    /// `len` 4-byte words starting at word `offset`.
    pub fn words(buffer: &wgpu::Buffer, offset: usize, len: usize) -> Self {
        Self { buffer: buffer.clone(), offset: (offset * 4) as u64, size: (len.max(1) * 4) as u64 }
    }
}

enum PendingOp {
    Dispatch { kernel: KernelId, flags: u32, uniform_offset: u64, views: Vec<View>, groups: [u32; 3] },
    Clear(View),
    Copy { src: View, dst: View },
}

enum Op {
    Dispatch { kernel: KernelId, pipeline: wgpu::ComputePipeline, bind_group: wgpu::BindGroup, groups: [u32; 3] },
    Clear(View),
    Copy { src: View, dst: View },
}

/// Collects dispatches; `finish` turns them into a replayable `Program`.
pub struct ProgramBuilder {
    /// Whether the adapter is a software renderer (lavapipe, SwiftShader):
    /// there workgroup memory is more of the same CPU memory and a barrier
    /// suspends every invocation, so no matmul stages tiles (kernels.rs).
    pub(crate) software_adapter: bool,
    /// The matmul kernel every product goes to, when a check wants one.
    pub(crate) forced_matmul: Option<MatmulKernel>,
    /// How attention and cross-entropy walk their rows, when a check wants one way.
    pub(crate) forced_rows: Option<RowKernel>,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: Arc<Pipelines>,
    uniforms: Vec<u8>,
    ops: Vec<PendingOp>,
    pub(crate) max_groups: u32,
    /// Scratch for two-pass reductions, shared by every dispatch of the program
    /// (they run in order); replaced by a larger one when a request outgrows it.
    scratch: Option<wgpu::Buffer>,
    placeholder: Option<wgpu::Buffer>,
    /// The device's count of bytes made (`GpuContext::made`).
    made: std::sync::Arc<[std::sync::atomic::AtomicU64; 2]>,
}

/// The ways matmul.wgsl computes a product (kernels.rs picks one per product).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKernel {
    /// `matmul`: tiles of the operands staged in workgroup memory.
    Tiled,
    /// `matmul_direct`: operands read straight from storage.
    Direct,
    /// `matmul_direct` with K cut into this many slices, summed by `column_sums`.
    SplitK(u32),
    /// `matmul_dot4`: `matmul_direct` reading both operands four K at a time,
    /// for the forward form with K a multiple of 4 (others take `Direct`).
    Dot4,
    /// `matmul_cols4`: `matmul_direct` reading op(b)'s rows four columns at a
    /// time, for the backward forms (others take `Direct`).
    Cols4,
}

/// The two ways a kernel that reduces along rows walks them: attention's
/// rows of keys, cross-entropy's rows of logits (kernels.rs picks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKernel {
    /// One invocation per row (attention: per pair of rows), no barrier (software adapters, where a barrier
    /// suspends every invocation of the workgroup).
    Invocation,
    /// One workgroup per row, its invocations striding along it.
    Workgroup,
}

/// The smallest reduction scratch a program makes, in words (`scratch`).
pub(crate) const SCRATCH_MIN_WORDS: usize = 1024;

/// WebGPU's largest allowed `minUniformBufferOffsetAlignment`.
pub(crate) const UNIFORM_ALIGN: usize = 256;

impl ProgramBuilder {
    pub fn new(ctx: &GpuContext) -> Self {
        Self {
            software_adapter: ctx.adapter.is_software(),
            forced_matmul: None,
            forced_rows: None,
            placeholder: None,
            device: ctx.device.clone(),
            queue: ctx.queue.clone(),
            pipelines: ctx.pipelines.clone(),
            uniforms: Vec::new(),
            ops: Vec::new(),
            max_groups: ctx.limits.max_compute_workgroups_per_dimension,
            scratch: None,
            made: ctx.made_counter(),
        }
    }

    /// `floats` words of scratch storage, made when the program is built.
    pub(crate) fn scratch(&mut self, floats: usize) -> View {
        let fits = self.scratch.as_ref().is_some_and(|b| b.size() >= (floats * 4) as u64);
        if !fits {
            let size = floats.max(SCRATCH_MIN_WORDS) as u64 * 4;
            self.count_made(size);
            self.scratch = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("reduction scratch"),
                size,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            }));
        }
        let buffer = self.scratch.as_ref().unwrap_or_else(|| unreachable!());
        View::words(buffer, 0, floats)
    }

    fn count_made(&self, bytes: u64) {
        self.made[1].fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// A one-word buffer to bind where a kernel's flags say a binding goes
    /// unread (binding a real operand there could make one buffer both read
    /// and written in a dispatch, which WebGPU refuses).
    pub(crate) fn placeholder(&mut self) -> View {
        if self.placeholder.is_none() {
            self.count_made(4);
        }
        let device = &self.device;
        let buffer = self.placeholder.get_or_insert_with(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("unread binding"),
                size: 4,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        });
        View::whole(buffer)
    }

    /// Records one dispatch of `kernel` over `groups` workgroups laid out on a
    /// grid of at most `max_compute_workgroups_per_dimension` columns; kernels
    /// recover the linear index as `wid.y * num_workgroups.x + wid.x`.
    pub(crate) fn dispatch<K: KernelDecl>(&mut self, kernel: K, params: &K::Params, views: &[&View], groups: u32) {
        let groups = groups.max(1);
        let x = groups.min(self.max_groups);
        let y = groups.div_ceil(x);
        self.dispatch_grid(kernel, params, views, [x, y, 1]);
    }

    /// Records one dispatch of `kernel` over a `groups` grid. The kernel is a
    /// marker type (`table::kernel::*`), so only its own params struct compiles.
    pub(crate) fn dispatch_grid<K: KernelDecl>(
        &mut self,
        kernel: K,
        params: &K::Params,
        views: &[&View],
        groups: [u32; 3],
    ) {
        self.dispatch_specialized(kernel, 0, params, views, groups);
    }

    /// `dispatch_grid` of a kernel whose WGSL declares `override FLAGS`, on
    /// the pipeline compiled with FLAGS = `flags` (0 is the declared default).
    pub(crate) fn dispatch_specialized<K: KernelDecl>(
        &mut self,
        _: K,
        flags: u32,
        params: &K::Params,
        views: &[&View],
        groups: [u32; 3],
    ) {
        let kernel = K::ID;
        debug_assert_eq!(views.len(), kernel.spec().bindings.len(), "{kernel:?}: wrong number of views");
        let uniform_offset = self.uniforms.len() as u64;
        self.uniforms.extend_from_slice(bytemuck::bytes_of(params));
        self.uniforms.resize(self.uniforms.len().next_multiple_of(UNIFORM_ALIGN), 0);
        self.ops.push(PendingOp::Dispatch {
            kernel,
            flags,
            uniform_offset,
            views: views.iter().map(|v| (*v).clone()).collect(),
            groups,
        });
    }

    /// Zeroes a range with a copy-engine clear (between compute passes).
    pub fn clear(&mut self, view: &View) {
        self.ops.push(PendingOp::Clear(view.clone()));
    }

    pub fn copy(&mut self, src: &View, dst: &View) {
        self.ops.push(PendingOp::Copy { src: src.clone(), dst: dst.clone() });
    }

    pub fn finish(self) -> Program {
        let size = self.uniforms.len().max(UNIFORM_ALIGN) as u64;
        self.count_made(size);
        let uniforms = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform arena"),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&uniforms, 0, &self.uniforms);
        let ops = self
            .ops
            .into_iter()
            .map(|op| match op {
                PendingOp::Dispatch { kernel, flags, uniform_offset, views, groups } => {
                    let spec = kernel.spec();
                    let mut entries = vec![wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &uniforms,
                            offset: uniform_offset,
                            size: wgpu::BufferSize::new(spec.params_size),
                        }),
                    }];
                    for ((binding, _), view) in spec.bindings.iter().zip(&views) {
                        entries.push(wgpu::BindGroupEntry {
                            binding: *binding,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &view.buffer,
                                offset: view.offset,
                                size: wgpu::BufferSize::new(view.size),
                            }),
                        });
                    }
                    let (layout, pipeline) = self.pipelines.kernel(&self.device, kernel, flags);
                    let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(spec.entry),
                        layout: &layout,
                        entries: &entries,
                    });
                    Op::Dispatch { kernel, pipeline, bind_group, groups }
                }
                PendingOp::Clear(v) => Op::Clear(v),
                PendingOp::Copy { src, dst } => Op::Copy { src, dst },
            })
            .collect();
        Program { _uniforms: uniforms, ops }
    }
}

/// Replayable GPU work. Encoding it costs no allocation of GPU objects.
pub struct Program {
    _uniforms: wgpu::Buffer,
    ops: Vec<Op>,
}

impl Program {
    /// Appends the whole program to `encoder`; consecutive dispatches share
    /// one compute pass.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut i = 0;
        while i < self.ops.len() {
            if let Op::Dispatch { .. } = &self.ops[i] {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("gradlab"),
                    timestamp_writes: None,
                });
                while let Some(op @ Op::Dispatch { .. }) = self.ops.get(i) {
                    self.record_dispatch(&mut pass, op);
                    i += 1;
                }
            } else {
                Self::record_transfer(encoder, &self.ops[i]);
                i += 1;
            }
        }
    }

    fn record_dispatch(&self, pass: &mut wgpu::ComputePass<'_>, op: &Op) {
        if let Op::Dispatch { pipeline, bind_group, groups, .. } = op {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
    }

    fn record_transfer(encoder: &mut wgpu::CommandEncoder, op: &Op) {
        match op {
            Op::Clear(v) => encoder.clear_buffer(&v.buffer, v.offset, Some(v.size)),
            Op::Copy { src, dst } => {
                encoder.copy_buffer_to_buffer(&src.buffer, src.offset, &dst.buffer, dst.offset, src.size.min(dst.size))
            }
            Op::Dispatch { .. } => {}
        }
    }

    /// Runs the program once with every dispatch in a compute pass of its
    /// own, timed by the GPU's timestamps: (kernel entry point, seconds) per
    /// dispatch, in recorded order. For the benchmark's profile: the extra
    /// passes cost time of their own, so the sum is an upper bound on the
    /// kernels' share of a step. Needs `TIMESTAMP_QUERY`: natively, and on the
    /// benchmark page where the adapter offers it (`GpuContext::with_timestamps`).
    pub async fn profile(&self, ctx: &GpuContext) -> Result<Vec<(&'static str, f64)>, GpuError> {
        if !ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(GpuError::Device(format!("{} has no timestamp queries", ctx.adapter)));
        }
        let count = 2 * self.dispatch_count() as u32;
        if count > wgpu::QUERY_SET_MAX_QUERIES {
            return Err(GpuError::Device(format!("{count} timestamps are more than a query set holds")));
        }
        let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile"),
            ty: wgpu::QueryType::Timestamp,
            count: count.max(2),
        });
        let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile timestamps"),
            size: u64::from(count.max(2)) * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let mut names = Vec::new();
        for op in &self.ops {
            let Op::Dispatch { kernel, .. } = op else {
                Self::record_transfer(&mut encoder, op);
                continue;
            };
            let first = 2 * names.len() as u32;
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("profiled"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(first),
                    end_of_pass_write_index: Some(first + 1),
                }),
            });
            self.record_dispatch(&mut pass, op);
            names.push(kernel.spec().entry);
        }
        encoder.resolve_query_set(&set, 0..count, &resolved, 0);
        ctx.queue.submit([encoder.finish()]);
        let bytes = ctx.read_bytes(&resolved, 0, u64::from(count) * 8).await?;
        // (a byte vector need not be aligned for a cast to u64)
        let ticks: Vec<u64> =
            bytes.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())).collect();
        let seconds_per_tick = f64::from(ctx.queue.get_timestamp_period()) * 1e-9;
        Ok(names
            .into_iter()
            .zip(ticks.chunks_exact(2))
            .map(|(name, t)| (name, t[1].saturating_sub(t[0]) as f64 * seconds_per_tick))
            .collect())
    }

    /// Encodes and submits on its own; for tests and one-off work.
    pub fn run(&self, ctx: &GpuContext) {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.encode(&mut encoder);
        ctx.queue.submit([encoder.finish()]);
    }

    pub fn dispatch_count(&self) -> usize {
        self.ops.iter().filter(|op| matches!(op, Op::Dispatch { .. })).count()
    }
}
