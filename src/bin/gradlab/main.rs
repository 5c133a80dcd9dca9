//! gradlab on the command line: train a tiny GPT on the GPU and watch the
//! loss, run the accumulation lab, export gradients, or check every kernel
//! against the CPU reference on this machine. One module per command, each
//! owning its arguments; `common` holds what several share, `csv` writes
//! row types as CSV files.
//! Native only; in the browser the page drives the library instead.

#[cfg(not(target_arch = "wasm32"))]
mod affected;
#[cfg(not(target_arch = "wasm32"))]
mod check;
#[cfg(not(target_arch = "wasm32"))]
mod common;
#[cfg(not(target_arch = "wasm32"))]
mod csv;
#[cfg(not(target_arch = "wasm32"))]
mod export;
#[cfg(not(target_arch = "wasm32"))]
mod figures;
#[cfg(not(target_arch = "wasm32"))]
mod pretrain;
#[cfg(not(target_arch = "wasm32"))]
mod scenario;
#[cfg(not(target_arch = "wasm32"))]
mod sweep;
#[cfg(not(target_arch = "wasm32"))]
mod train;

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    #[command(name = "gradlab", version, about = "Watch a tiny GPT learn on your GPU (WGSL kernels through wgpu).")]
    pub struct Cli {
        #[command(subcommand)]
        pub command: Command,
    }

    #[derive(Subcommand)]
    pub enum Command {
        /// Train a model on a text and print the loss of every step.
        Train(super::train::Args),
        /// The reference experiment: the full batch (b = B) beside naive and
        /// corrected accumulation at every micro-batch size b below B that
        /// divides it (for B = 16: b = 1, 2, 4, 8, so G = 16, 8, 4, 2), in lockstep.
        Sweep(super::sweep::Args),
        /// Pretrain a model on packed windows of a corpus and write its weights
        /// (the base a LoRA lab adapts).
        Pretrain(super::pretrain::Args),
        /// Write one batch, the weights and the GPU gradients of every strategy to DIR.
        ExportGrads(super::export::Args),
        /// Compare every GPU kernel and a whole model step with the f64 reference.
        Check(super::check::Args),
        /// Train one of the page's scenarios (or `all`) over several seeds to
        /// its horizon, as the page does, and check what it claims.
        Scenario(super::scenario::Args),
        /// The data of the seed write-up's two figures over several seeds
        /// (naive's loss gaps and ‖ΔW − ΔW_full‖ against G), for the page.
        Figures(super::figures::Args),
        /// Does this affect my training? From your examples' target-token
        /// counts, B, b and R: how far naive and local accumulation weigh
        /// each example's tokens from corrected, without training.
        Affected(super::affected::Args),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    use cli::{Cli, Command};
    let result = match Cli::parse().command {
        Command::Train(args) => train::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Pretrain(args) => pretrain::run(args),
        Command::ExportGrads(args) => export::run(args),
        Command::Check(args) => check::run(args),
        Command::Scenario(args) => scenario::run(args),
        Command::Figures(args) => figures::run(args),
        Command::Affected(args) => affected::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
