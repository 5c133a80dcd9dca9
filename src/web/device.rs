//! The page's one GPU device, shared by every lab on the page.
//!
//! Not here: what runs on it (`lab`); the benchmark page opens a device of
//! its own (`bench`), with timestamp queries.

use std::cell::RefCell;

use crate::gpu::GpuContext;

/// The page's one GPU device: every lab on the page (several embedded
/// elements, the sweep's labs) runs on it, so the kernels compile once and
/// the browser holds one device. A lost device is replaced by the next lab
/// that asks; labs still on the old one report the loss.
enum SharedGpu {
    Closed,
    /// Being opened; these labs wait for it.
    Opening(Vec<futures_channel::oneshot::Sender<Result<GpuContext, String>>>),
    Open(Box<GpuContext>),
}

thread_local! {
    static SHARED_GPU: RefCell<SharedGpu> = const { RefCell::new(SharedGpu::Closed) };
}

/// The limits of the page's device, once it is open (and not lost): what
/// `validateLabConfig` checks a lab for WebGPU against, where it can.
pub(super) fn shared_limits() -> Option<wgpu::Limits> {
    SHARED_GPU.with(|shared| match &*shared.borrow() {
        SharedGpu::Open(ctx) if ctx.lost().is_none() => Some(ctx.limits.clone()),
        _ => None,
    })
}

/// The page's device for one more lab (`GpuContext::share`), opened on first
/// use; the error says why there is none.
pub(super) async fn shared_gpu() -> Result<GpuContext, String> {
    enum Next {
        Ready(Box<GpuContext>),
        Wait(futures_channel::oneshot::Receiver<Result<GpuContext, String>>),
        Open,
    }
    let next = SHARED_GPU.with(|shared| {
        let mut shared = shared.borrow_mut();
        match &mut *shared {
            SharedGpu::Open(ctx) if ctx.lost().is_none() => Next::Ready(Box::new(ctx.share())),
            SharedGpu::Opening(waiting) => {
                let (tx, rx) = futures_channel::oneshot::channel();
                waiting.push(tx);
                Next::Wait(rx)
            }
            _ => {
                *shared = SharedGpu::Opening(Vec::new());
                Next::Open
            }
        }
    });
    match next {
        Next::Ready(ctx) => Ok(*ctx),
        Next::Wait(rx) => {
            rx.await.unwrap_or_else(|_| Err("opening the GPU device was abandoned".into())).map(|ctx| ctx.share())
        }
        Next::Open => {
            let opened = GpuContext::new().await.map_err(|e| e.to_string());
            let waiting = SHARED_GPU.with(|shared| {
                let now = match &opened {
                    Ok(ctx) => SharedGpu::Open(Box::new(ctx.unlisted())),
                    // the next lab tries again
                    Err(_) => SharedGpu::Closed,
                };
                match shared.replace(now) {
                    SharedGpu::Opening(waiting) => waiting,
                    _ => Vec::new(),
                }
            });
            for tx in waiting {
                // a waiter that went away needs no answer
                let _ = tx.send(opened.clone());
            }
            opened.map(|ctx| ctx.share())
        }
    }
}
