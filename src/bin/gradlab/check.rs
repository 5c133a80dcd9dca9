//! `check`: every GPU kernel and a whole model step against the CPU
//! reference on this machine's adapter — the quick suite the browser tests
//! run (`gradlab::checks::quick_suite`), sampling included.

use gradlab::checks;
use gradlab::gpu::GpuContext;
use pollster::block_on;

use crate::common::AnyError;

#[derive(clap::Args)]
pub struct Args {
    /// Seed for the random inputs (default: GRADLAB_SEED, else time-based).
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: Args) -> Result<(), AnyError> {
    let seed = args.seed.unwrap_or_else(|| checks::Seed::fresh().0);
    let ctx = GpuContext::new_blocking()?;
    println!("adapter: {}  seed: {seed}", ctx.adapter);
    let (mut passed, mut failed) = (0, 0);
    for (i, check) in checks::quick_suite().iter().enumerate() {
        let results = block_on(check.run(&ctx, seed.wrapping_add(i as u64)))?;
        let bad = check.failures(&results);
        for r in &results {
            let ok = !bad.iter().any(|b| std::ptr::eq(*b, r));
            println!("{} {r}  (tolerance {:e})", if ok { "ok  " } else { "FAIL" }, check.tolerance);
        }
        failed += bad.len();
        passed += results.len() - bad.len();
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        return Err(format!("{failed} comparisons above tolerance (replay with --seed {seed})").into());
    }
    Ok(())
}
