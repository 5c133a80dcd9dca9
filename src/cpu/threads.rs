//! Where the CPU backend shares its work among threads: natively on rayon's
//! pool; in the browser's threads build (feature `threads`, a cross-origin
//! isolated page) on the same pool, its threads Web Workers over one shared
//! memory (wasm-bindgen-rayon); in the plain browser build on this thread.
//! The work is cut so that every number is computed by one thread in one
//! order, so the results are the same bits on any number of threads.

/// Threads the work may be shared among.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub fn available() -> usize {
    rayon::current_num_threads()
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub fn available() -> usize {
    1
}

/// `job` on every item, at the same time where there are threads.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub fn for_each<T: Send>(items: Vec<T>, job: impl Fn(T) + Sync + Send) {
    use rayon::prelude::*;
    // one item stays on this thread: handing it to the pool and waiting
    // costs a wake-up each way and gains nothing
    if items.len() < 2 {
        return items.into_iter().for_each(job);
    }
    #[cfg(all(target_arch = "wasm32", feature = "threads"))]
    return items.into_par_iter().for_each(|item| {
        rehearsal::trap_if_armed();
        job(item)
    });
    #[cfg(not(all(target_arch = "wasm32", feature = "threads")))]
    items.into_par_iter().for_each(job)
}

/// A rehearsal of a thread of the browser's pool failing mid-step, for the
/// page's watchdog and its test (www/lab/remote.js, tests/e2e/pool.test.mjs):
/// `rehearsePoolTrap()`, called in a lab worker, makes the next item a pool
/// thread takes trap, as a panic in it would (panics abort in wasm).
#[cfg(all(target_arch = "wasm32", feature = "threads"))]
mod rehearsal {
    use std::sync::atomic::{AtomicBool, Ordering};
    use wasm_bindgen::prelude::wasm_bindgen;

    static ARMED: AtomicBool = AtomicBool::new(false);

    #[wasm_bindgen(js_name = rehearsePoolTrap)]
    pub fn arm() {
        ARMED.store(true, Ordering::Relaxed);
    }

    pub fn trap_if_armed() {
        // a load first: the swap's write would bounce the line between threads every item
        if ARMED.load(Ordering::Relaxed)
            && rayon::current_thread_index().is_some()
            && ARMED.swap(false, Ordering::Relaxed)
        {
            core::arch::wasm32::unreachable()
        }
    }
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub fn for_each<T: Send>(items: Vec<T>, job: impl Fn(T) + Sync + Send) {
    items.into_iter().for_each(job)
}
