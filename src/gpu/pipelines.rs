//! Every kernel of the table compiled for one device: a shader module per
//! WGSL file, a bind-group layout per kernel, and a compute pipeline per
//! kernel and value of its FLAGS constant (the matmul kernels' epilogue; 0
//! for every other kernel), each made the first time a program uses it and
//! looked up by index after. A device compiles only the kernels its programs
//! pick: a software adapter never builds the tiled matmul or the real GPUs'
//! attention, and a real GPU never the `_serial` kernels. A build whose error scope reports a
//! validation error (a kernel this browser will not compile) has everything
//! compiled so far forgotten (`forget`), so the next lab's build compiles
//! again and hears of the failure in its own scope.
//!
//! Not here: bind groups or dispatches (`program`), or what a kernel is
//! (`table`).

use std::sync::{Mutex, MutexGuard};

use super::table::{Access, KernelId};

pub(crate) struct Pipelines {
    /// Each WGSL file: its name and text.
    files: Vec<(&'static str, &'static str)>,
    compiled: Mutex<Compiled>,
}

/// What has been compiled so far, `None` until first used.
#[derive(Default)]
struct Compiled {
    /// One per file of `files`.
    modules: Vec<Option<wgpu::ShaderModule>>,
    /// One per kernel.
    layouts: Vec<Option<wgpu::BindGroupLayout>>,
    /// Kernel `k` with FLAGS = `f` at `k * FLAG_VALUES + f`.
    pipelines: Vec<Option<wgpu::ComputePipeline>>,
}

impl Compiled {
    fn empty(files: usize) -> Self {
        Self {
            modules: vec![None; files],
            layouts: vec![None; KernelId::ALL.len()],
            pipelines: vec![None; KernelId::ALL.len() * FLAG_VALUES],
        }
    }
}

/// FLAGS values a kernel may be compiled with: four bits (matmul.wgsl).
const FLAG_VALUES: usize = 16;

impl Pipelines {
    pub(crate) fn new() -> Self {
        let mut files: Vec<(&'static str, &'static str)> = Vec::new();
        for spec in KernelId::ALL.iter().map(|k| k.spec()) {
            if !files.iter().any(|(file, _)| *file == spec.file) {
                files.push((spec.file, spec.source));
            }
        }
        Self { compiled: Mutex::new(Compiled::empty(files.len())), files }
    }

    fn compiled(&self) -> MutexGuard<'_, Compiled> {
        // a panic while compiling leaves nothing half-made: each entry is set whole
        self.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops everything compiled (programs already built keep their
    /// pipelines): after a build that failed validation, one of them may be
    /// an invalid object a later build would use without hearing why.
    pub(crate) fn forget(&self) {
        *self.compiled() = Compiled::empty(self.files.len());
    }

    /// `kernel`'s bind-group layout and its pipeline with FLAGS = `flags`, on
    /// `device` (the one these pipelines belong to: a `GpuContext` holds
    /// both), compiled on first use.
    pub(crate) fn kernel(
        &self,
        device: &wgpu::Device,
        kernel: KernelId,
        flags: u32,
    ) -> (wgpu::BindGroupLayout, wgpu::ComputePipeline) {
        let spec = kernel.spec();
        let f = flags as usize;
        assert!(f < FLAG_VALUES, "{kernel:?}: FLAGS {flags} has more than four bits");
        let mut compiled = self.compiled();
        let layout = compiled.layouts[kernel as usize]
            .get_or_insert_with(|| {
                let mut entries = vec![wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        // wgpu then refuses, when compiling, a Rust struct smaller than its WGSL twin
                        min_binding_size: wgpu::BufferSize::new(spec.params_size),
                    },
                    count: None,
                }];
                for &(binding, access) in spec.bindings {
                    entries.push(wgpu::BindGroupLayoutEntry {
                        binding,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage { read_only: access == Access::R },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    });
                }
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(spec.entry),
                    entries: &entries,
                })
            })
            .clone();
        if let Some(pipeline) = &compiled.pipelines[kernel as usize * FLAG_VALUES + f] {
            return (layout, pipeline.clone());
        }
        // the module of the kernel's file; kernels of one file share it
        let file = self
            .files
            .iter()
            .position(|(name, _)| *name == spec.file)
            .unwrap_or_else(|| unreachable!("{} is in the table", spec.file));
        let module = compiled.modules[file]
            .get_or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(spec.file),
                    source: wgpu::ShaderSource::Wgsl(self.files[file].1.into()),
                })
            })
            .clone();
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        // only a kernel whose WGSL declares FLAGS is ever given one other than 0
        let constants = [("FLAGS", f64::from(flags))];
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: if flags == 0 { &[] } else { &constants },
                ..Default::default()
            },
            cache: None,
        });
        compiled.pipelines[kernel as usize * FLAG_VALUES + f] = Some(pipeline.clone());
        (layout, pipeline)
    }
}
