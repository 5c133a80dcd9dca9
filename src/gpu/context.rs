//! Device acquisition, shared by native and web: one async path, awaited by
//! `pollster` natively and by the browser's event loop in wasm; plus buffers
//! and reading them back.
//!
//! Acquisition is split from execution (as in wgpu's examples) so tests and the
//! page can hold one `GpuContext` and build many runs on it.
//! Not here: recording work (`program`) or the kernels themselves.

use std::sync::{Arc, Mutex, Weak};

use super::pipelines::Pipelines;

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found ({0}); in a browser this means WebGPU is not available")]
    NoAdapter(String),
    #[error("the adapter refused a device: {0}")]
    NoDevice(String),
    #[error("reading a GPU buffer back failed: {0}")]
    Readback(String),
    #[error("the GPU reported an error: {0}")]
    Device(String),
    #[error(transparent)]
    Config(#[from] crate::model::ConfigError),
}

type ErrorSink = Mutex<Vec<String>>;
type ErrorList = Arc<ErrorSink>;

/// What the user is told about the hardware a run is on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it (empty on some browsers).
    pub name: String,
    /// `Vulkan`, `Metal`, `Dx12`, `Gl`, or `BrowserWebGpu`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `Cpu` (software), ...
    pub device_type: String,
    pub driver: String,
}

impl AdapterSummary {
    /// Whether the adapter is a software renderer (wgpu's device type `Cpu`:
    /// lavapipe natively, a browser's fallback adapter such as SwiftShader).
    pub fn is_software(&self) -> bool {
        self.device_type == format!("{:?}", wgpu::DeviceType::Cpu)
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.name.is_empty() { "unnamed adapter" } else { &self.name };
        write!(f, "{name} ({}, {})", self.backend, self.device_type)
    }
}

/// A device, its queue, and every compute pipeline, made once. Cloning is
/// cheap (handles and shared pointers): each run keeps its own clone.
#[derive(Clone)]
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    pub(crate) pipelines: Arc<Pipelines>,
    /// Errors wgpu reported outside any call (validation, out of memory); kept
    /// here instead of wgpu's default of panicking, and surfaced by `check_errors`.
    errors: ErrorList,
    /// Bytes of the buffers made on this device through `storage`,
    /// `mappable` and `Readback`, and of those recorded programs made
    /// (uniform arenas, scratch): for checking `plan` against what a run
    /// really makes (tests/limits.rs).
    made: Arc<[std::sync::atomic::AtomicU64; 2]>,
    /// The error list of every holder of this device (`share`): an uncaptured
    /// error cannot be traced to the work that caused it, so each one hears of it.
    listeners: Arc<Mutex<Vec<Weak<ErrorSink>>>>,
    /// Why the device was lost, once it has been (`lost`).
    lost: Arc<std::sync::Mutex<Option<String>>>,
}

impl GpuContext {
    /// Finds an adapter (any backend natively, WebGPU in the browser) and opens a device.
    pub async fn new() -> Result<Self, GpuError> {
        // timestamps natively, where the benchmark's per-kernel profile reads them
        let wanted =
            if cfg!(target_arch = "wasm32") { wgpu::Features::empty() } else { wgpu::Features::TIMESTAMP_QUERY };
        Self::with_features(wanted).await
    }

    /// Like `new`, with timestamp queries wherever the adapter has them (the
    /// benchmark page's per-kernel profile, `Program::profile`).
    pub async fn with_timestamps() -> Result<Self, GpuError> {
        Self::with_features(wgpu::Features::TIMESTAMP_QUERY).await
    }

    /// Opens a device with the `wanted` features the adapter has.
    async fn with_features(wanted: wgpu::Features) -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let supported = adapter.limits();
        // Defaults are accepted everywhere we run; raise only what model size needs.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: supported.max_storage_buffer_binding_size,
            max_buffer_size: supported.max_buffer_size,
            max_storage_buffers_per_shader_stage: supported.max_storage_buffers_per_shader_stage.min(10),
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("gradlab"),
                required_features: adapter.features() & wanted,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoDevice(e.to_string()))?;
        let errors: ErrorList = Arc::default();
        let listeners = Arc::new(Mutex::new(vec![Arc::downgrade(&errors)]));
        let sink = listeners.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut lists) = sink.lock() {
                lists.retain(|list| list.strong_count() > 0);
                for list in lists.iter().filter_map(Weak::upgrade) {
                    if let Ok(mut list) = list.lock() {
                        list.push(e.to_string());
                    }
                }
            }
        }));
        let lost: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_sink.lock() {
                let message = if message.is_empty() { "no reason given".to_string() } else { message };
                slot.get_or_insert(format!("{reason:?}: {message}"));
            }
        });
        // the kernels compile when a program first uses them (a build's error scope hears of a failure)
        // In the browser's threads build wgpu's objects are not Send: the
        // context and its pipelines stay on the lab worker's thread there.
        #[cfg_attr(all(target_arch = "wasm32", target_feature = "atomics"), allow(clippy::arc_with_non_send_sync))]
        let pipelines = Arc::new(Pipelines::new());
        Ok(Self {
            device,
            queue,
            adapter: AdapterSummary {
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            },
            limits,
            pipelines,
            made: Arc::default(),
            errors,
            listeners,
            lost,
        })
    }

    /// The same device and kernels for another holder (a second lab on the
    /// page), with an error list of its own: `check_errors` here does not take
    /// errors the other holders have yet to see.
    pub fn share(&self) -> Self {
        let errors: ErrorList = Arc::default();
        if let Ok(mut lists) = self.listeners.lock() {
            lists.retain(|list| list.strong_count() > 0);
            lists.push(Arc::downgrade(&errors));
        }
        Self { errors, ..self.clone() }
    }

    /// A copy that hears of no error, for keeping the device open between
    /// holders (it runs nothing, so nothing it could hear would be its own).
    pub fn unlisted(&self) -> Self {
        Self { errors: Arc::default(), ..self.clone() }
    }

    /// Runs `build` (buffers made, work recorded, nothing awaited) with the
    /// errors it causes caught in error scopes: on a device others share, a
    /// build that runs out of memory or fails validation is its own failure,
    /// not an uncaptured error every holder hears of.
    pub async fn scoped<T>(&self, build: impl FnOnce() -> T) -> Result<T, GpuError> {
        let out_of_memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let built = build();
        // popped now, in reverse order; the futures only report
        let validation = validation.pop();
        let out_of_memory = out_of_memory.pop();
        match (validation.await, out_of_memory.await) {
            (Some(e), _) => {
                // perhaps a kernel that did not compile: the next build compiles it again
                self.pipelines.forget();
                Err(GpuError::Device(e.to_string()))
            }
            (None, Some(e)) => Err(GpuError::Device(e.to_string())),
            (None, None) => Ok(built),
        }
    }

    /// Why the device was lost (the browser reset it, the driver crashed, it
    /// was destroyed), or None while it works. Nothing on it works after.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Returns the first error wgpu reported since the last call, if any.
    pub fn check_errors(&self) -> Result<(), GpuError> {
        let mut list = self.errors.lock().map_err(|_| GpuError::Device("error list poisoned".into()))?;
        let first = list.drain(..).next();
        match first {
            Some(first) => Err(GpuError::Device(first)),
            None => Ok(()),
        }
    }

    /// Blocks natively; unavailable on wasm, where everything must be awaited.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self, GpuError> {
        pollster::block_on(Self::new())
    }

    /// A storage buffer of `floats` 4-byte words, zero-filled.
    pub fn storage(&self, label: &str, floats: usize) -> wgpu::Buffer {
        // WebGPU refuses zero-sized bindings; keep one word at least
        let size = floats.max(1) as u64 * 4;
        self.count_made(0, size);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A buffer of `words` 4-byte words the CPU maps to read what is copied into it.
    pub fn mappable(&self, label: &str, words: usize) -> wgpu::Buffer {
        let size = words.max(1) as u64 * 4;
        self.count_made(0, size);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Adds `bytes` to what was made: `kind` 0 for buffers sized by `plan`
    /// one by one, 1 for those of recorded programs.
    pub(crate) fn count_made(&self, kind: usize, bytes: u64) {
        self.made[kind].fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes of buffers made on this device so far: (those `plan` sizes one
    /// by one, those of recorded programs).
    pub fn made(&self) -> (u64, u64) {
        let load = |i: usize| self.made[i].load(std::sync::atomic::Ordering::Relaxed);
        (load(0), load(1))
    }

    /// The counter of program buffers, for a `ProgramBuilder`.
    pub(crate) fn made_counter(&self) -> Arc<[std::sync::atomic::AtomicU64; 2]> {
        self.made.clone()
    }

    /// A storage buffer holding `data`.
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let buf = self.storage(label, std::mem::size_of_val(data).div_ceil(4));
        self.queue.write_buffer(&buf, 0, bytemuck::cast_slice(data));
        buf
    }

    /// Copies `floats` words starting at word `offset` of `buffer` to the CPU.
    /// Awaits the GPU; meant for tests, export and sampling, not for every step.
    pub async fn read_f32(&self, buffer: &wgpu::Buffer, offset: usize, floats: usize) -> Result<Vec<f32>, GpuError> {
        let bytes = self.read_bytes(buffer, (offset * 4) as u64, (floats * 4) as u64).await?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Copies `words` 32-bit words (token ids) starting at word `offset` of `buffer` to the CPU.
    pub async fn read_u32(&self, buffer: &wgpu::Buffer, offset: usize, words: usize) -> Result<Vec<u32>, GpuError> {
        let bytes = self.read_bytes(buffer, (offset * 4) as u64, (words * 4) as u64).await?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// One-off readback through a staging buffer made for it; work that reads
    /// the same result again and again keeps a `Readback` instead.
    pub async fn read_bytes(&self, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>, GpuError> {
        if size == 0 {
            return Ok(Vec::new());
        }
        // made for this read alone, and not counted with what runs hold (`made`)
        let staging = Readback {
            buffer: self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: size.div_ceil(4) * 4,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let mut encoder = self.device.create_command_encoder(&Default::default());
        staging.record_copy(&mut encoder, buffer, offset, size);
        self.queue.submit([encoder.finish()]);
        staging.read_bytes(self, size).await
    }
}

/// A mappable buffer made once, for reading a small GPU result back again
/// and again (sampled tokens, validation sums, a benchmark's completion probe)
/// without creating a buffer per read. The copy into it is recorded in the
/// caller's own submission.
pub struct Readback {
    buffer: wgpu::Buffer,
}

impl Readback {
    pub fn new(ctx: &GpuContext, label: &str, words: usize) -> Self {
        Self { buffer: ctx.mappable(label, words) }
    }

    /// Records a copy of `size` bytes of `src` from byte `offset` into this buffer.
    pub fn record_copy(&self, encoder: &mut wgpu::CommandEncoder, src: &wgpu::Buffer, offset: u64, size: u64) {
        encoder.copy_buffer_to_buffer(src, offset, &self.buffer, 0, size);
    }

    /// The first `size` bytes, once the GPU has written them.
    pub async fn read_bytes(&self, ctx: &GpuContext, size: u64) -> Result<Vec<u8>, GpuError> {
        map_and_wait(&ctx.device, &self.buffer).await?;
        let data =
            self.buffer.slice(..size).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?.to_vec();
        self.buffer.unmap();
        Ok(data)
    }

    /// The first `words` 32-bit words as f32.
    pub async fn read_f32(&self, ctx: &GpuContext, words: usize) -> Result<Vec<f32>, GpuError> {
        Ok(bytemuck::cast_slice(&self.read_bytes(ctx, (words * 4) as u64).await?).to_vec())
    }

    /// The first `words` 32-bit words as u32.
    pub async fn read_u32(&self, ctx: &GpuContext, words: usize) -> Result<Vec<u32>, GpuError> {
        Ok(bytemuck::cast_slice(&self.read_bytes(ctx, (words * 4) as u64).await?).to_vec())
    }
}

/// A read-map of a buffer, started and not yet taken: the ring of step-stats
/// buffers keeps a few in flight and takes each once it has finished.
pub struct PendingMap {
    mapped: futures_channel::oneshot::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

impl PendingMap {
    /// Starts mapping all of `buffer` for reading.
    pub fn start(buffer: &wgpu::Buffer) -> Self {
        let (tx, rx) = futures_channel::oneshot::channel();
        buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        Self { mapped: rx }
    }

    /// True once the map has finished, false while the GPU is still busy;
    /// never waits. Natively the device must have been polled for it to move.
    /// Once it has answered true the map is the caller's: don't ask again.
    pub fn is_done(&mut self) -> Result<bool, GpuError> {
        match self.mapped.try_recv() {
            Ok(None) => Ok(false),
            Ok(Some(result)) => {
                result.map_err(|e| GpuError::Readback(e.to_string()))?;
                Ok(true)
            }
            Err(_) => Err(GpuError::Readback("the map callback was dropped".into())),
        }
    }

    /// Waits for the map: natively by polling the device, on the web by
    /// awaiting the callback the browser fires.
    pub async fn wait(self, device: &wgpu::Device) -> Result<(), GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        #[cfg(target_arch = "wasm32")]
        let _ = device;
        self.mapped
            .await
            .map_err(|_| GpuError::Readback("the map callback was dropped".into()))?
            .map_err(|e| GpuError::Readback(e.to_string()))
    }
}

/// Maps `buffer` for reading and waits for it.
pub async fn map_and_wait(device: &wgpu::Device, buffer: &wgpu::Buffer) -> Result<(), GpuError> {
    PendingMap::start(buffer).wait(device).await
}
