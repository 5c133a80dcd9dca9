//! Every kernel of the table compiled for one device: a shader module per
//! WGSL file, and a bind-group layout and compute pipeline per kernel, made
//! once when the device is opened and looked up by `KernelId as usize`.
//!
//! Not here: bind groups or dispatches (`program`), or what a kernel is
//! (`table`).

use super::table::{Access, KernelId};

pub(crate) struct Pipelines {
    layouts: Vec<wgpu::BindGroupLayout>,
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Pipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        // kernels of one file share its module: compile each file once
        let mut modules: Vec<(&str, wgpu::ShaderModule)> = Vec::new();
        for kernel in KernelId::ALL {
            let spec = kernel.spec();
            if !modules.iter().any(|(file, _)| *file == spec.file) {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(spec.file),
                    source: wgpu::ShaderSource::Wgsl(spec.source.into()),
                });
                modules.push((spec.file, module));
            }
        }
        let mut layouts = Vec::new();
        let mut pipelines = Vec::new();
        for kernel in KernelId::ALL {
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
            let module = modules.iter().find(|(file, _)| *file == spec.file).map(|(_, m)| m);
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(spec.entry),
                layout: Some(&pipeline_layout),
                module: module.unwrap_or_else(|| unreachable!("every file was compiled above")),
                entry_point: Some(spec.entry),
                compilation_options: Default::default(),
                cache: None,
            });
            layouts.push(layout);
            pipelines.push(pipeline);
        }
        Self { layouts, pipelines }
    }

    pub(crate) fn layout(&self, kernel: KernelId) -> &wgpu::BindGroupLayout {
        &self.layouts[kernel as usize]
    }

    pub(crate) fn pipeline(&self, kernel: KernelId) -> &wgpu::ComputePipeline {
        &self.pipelines[kernel as usize]
    }
}
