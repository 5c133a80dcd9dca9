//! gradlab on the command line: train a tiny GPT on the GPU and watch the
//! loss, or check every kernel against the CPU reference on this machine.
//! Native only; in the browser the page drives the library instead.

#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod lab_cmds;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
