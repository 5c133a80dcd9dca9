//! Every kernel of the table compiled for one device: a shader module per
//! WGSL file, a bind-group layout per kernel, and a compute pipeline per
//! kernel and value of its FLAGS constant (the matmul kernels' epilogue; 0
//! for every other kernel), each made the first time a program uses it and
//! looked up by index after. A device compiles only the kernels its programs
//! pick: a software adapter never builds the tiled matmul or the real GPUs'
//! attention, a real GPU never the `_serial` kernels, and a lab that never
//! samples never builds the sampler.
//!
//! Not here: bind groups or dispatches (`program`), or what a kernel is
//! (`table`).

use std::sync::OnceLock;

use super::table::{Access, KernelId};

pub(crate) struct Pipelines {
    /// Each WGSL file (its name and text) with its module once compiled.
    files: Vec<(&'static str, &'static str)>,
    modules: Vec<OnceLock<wgpu::ShaderModule>>,
    layouts: Vec<OnceLock<wgpu::BindGroupLayout>>,
    /// Kernel `k` with FLAGS = `f` at `k * FLAG_VALUES + f`.
    pipelines: Vec<OnceLock<wgpu::ComputePipeline>>,
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
        Self {
            modules: files.iter().map(|_| OnceLock::new()).collect(),
            files,
            layouts: KernelId::ALL.iter().map(|_| OnceLock::new()).collect(),
            pipelines: (0..KernelId::ALL.len() * FLAG_VALUES).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The module of `file`, compiled on first use; kernels of one file share it.
    fn module(&self, device: &wgpu::Device, file: &'static str) -> &wgpu::ShaderModule {
        let i =
            self.files.iter().position(|(f, _)| *f == file).unwrap_or_else(|| unreachable!("{file} is in the table"));
        self.modules[i].get_or_init(|| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(file),
                source: wgpu::ShaderSource::Wgsl(self.files[i].1.into()),
            })
        })
    }

    /// `kernel`'s bind-group layout and its pipeline with FLAGS = `flags`, on
    /// `device` (the one these pipelines belong to), compiled on first use.
    pub(crate) fn kernel(
        &self,
        device: &wgpu::Device,
        kernel: KernelId,
        flags: u32,
    ) -> (&wgpu::BindGroupLayout, &wgpu::ComputePipeline) {
        let spec = kernel.spec();
        let layout = self.layouts[kernel as usize].get_or_init(|| {
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
        });
        let f = flags as usize;
        assert!(f < FLAG_VALUES, "{kernel:?}: FLAGS {flags} has more than four bits");
        let pipeline = self.pipelines[kernel as usize * FLAG_VALUES + f].get_or_init(|| {
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(spec.entry),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            });
            // only a kernel whose WGSL declares FLAGS is ever given one other than 0
            let constants = [("FLAGS", f64::from(flags))];
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(spec.entry),
                layout: Some(&pipeline_layout),
                module: self.module(device, spec.file),
                entry_point: Some(spec.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: if flags == 0 { &[] } else { &constants },
                    ..Default::default()
                },
                cache: None,
            })
        });
        (layout, pipeline)
    }
}
