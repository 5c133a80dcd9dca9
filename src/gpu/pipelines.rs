//! Every kernel of the table compiled for one device: a shader module per
//! WGSL file, and a bind-group layout and compute pipeline per kernel, each
//! made the first time a program uses it and looked up by `KernelId as
//! usize` after. A device compiles only the kernels its programs pick: a
//! software adapter never builds the tiled matmul or the real GPUs'
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
    kernels: Vec<OnceLock<(wgpu::BindGroupLayout, wgpu::ComputePipeline)>>,
}

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
            kernels: KernelId::ALL.iter().map(|_| OnceLock::new()).collect(),
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

    /// `kernel`'s bind-group layout and pipeline on `device` (the one these
    /// pipelines belong to), compiled on first use.
    pub(crate) fn kernel(
        &self,
        device: &wgpu::Device,
        kernel: KernelId,
    ) -> &(wgpu::BindGroupLayout, wgpu::ComputePipeline) {
        self.kernels[kernel as usize].get_or_init(|| {
            let spec = kernel.spec();
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
                module: self.module(device, spec.file),
                entry_point: Some(spec.entry),
                compilation_options: Default::default(),
                cache: None,
            });
            (layout, pipeline)
        })
    }
}
