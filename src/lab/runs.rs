//! A lab's runs behind one trait object, whatever their backend.
//!
//! `Trainer` is generic (a run type, its device, `lockstep` over a slice of
//! its own kind) so that a backend can record every run's step in one
//! submission. Everything the lab does above that is the same on every
//! backend, so the lab holds its runs as `Box<dyn Runs>` and is compiled once,
//! not once per backend: the web module carries three backends, and each
//! copy of the lab's code was one more in it.

use crate::model::ConfigError;
use crate::train::{Batch, RunConfig, RunState, StepError, StepStats, StepWork, Trainer};

/// A future awaited on the thread that made it (the browser's, or pollster's).
pub type LocalFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// The runs of one lab, all of one backend; `run` indexes them (the lab has
/// checked it). Each method is the `Trainer` method of the same name.
pub trait Runs {
    /// How many runs there are.
    fn count(&self) -> usize;
    fn describe(&self) -> String;
    fn device_lost(&self) -> Option<String>;
    fn config(&self, run: usize) -> &RunConfig;
    fn lockstep<'a>(&'a mut self, work: &'a [Option<StepWork<'a>>]) -> LocalFuture<'a, Result<(), StepError>>;
    fn poll(&mut self, run: usize, wait: bool) -> LocalFuture<'_, Result<Vec<StepStats>, StepError>>;
    fn eval_loss<'a>(&'a mut self, run: usize, batch: &'a Batch) -> LocalFuture<'a, Result<f64, StepError>>;
    fn generate<'a>(
        &'a mut self,
        run: usize,
        window: &'a [u32],
        draws: &'a [f32],
    ) -> LocalFuture<'a, Result<Vec<u32>, StepError>>;
    fn params(&self, run: usize) -> LocalFuture<'_, Result<Vec<f32>, StepError>>;
    fn state(&self, run: usize) -> LocalFuture<'_, Result<RunState, StepError>>;
    fn set_state(&mut self, run: usize, state: &RunState) -> Result<(), ConfigError>;
    #[allow(clippy::type_complexity)]
    fn gradients<'a>(
        &'a mut self,
        run: usize,
        work: StepWork<'a>,
    ) -> LocalFuture<'a, Result<(Vec<f32>, Vec<f32>), StepError>>;
}

impl<R: Trainer> Runs for Vec<R> {
    fn count(&self) -> usize {
        self.len()
    }
    fn describe(&self) -> String {
        self[0].describe()
    }
    fn device_lost(&self) -> Option<String> {
        self.iter().find_map(R::device_lost)
    }
    fn config(&self, run: usize) -> &RunConfig {
        self[run].config()
    }
    fn lockstep<'a>(&'a mut self, work: &'a [Option<StepWork<'a>>]) -> LocalFuture<'a, Result<(), StepError>> {
        Box::pin(R::lockstep(self, work))
    }
    fn poll(&mut self, run: usize, wait: bool) -> LocalFuture<'_, Result<Vec<StepStats>, StepError>> {
        Box::pin(self[run].poll(wait))
    }
    fn eval_loss<'a>(&'a mut self, run: usize, batch: &'a Batch) -> LocalFuture<'a, Result<f64, StepError>> {
        Box::pin(self[run].eval_loss(batch))
    }
    fn generate<'a>(
        &'a mut self,
        run: usize,
        window: &'a [u32],
        draws: &'a [f32],
    ) -> LocalFuture<'a, Result<Vec<u32>, StepError>> {
        Box::pin(self[run].generate(window, draws))
    }
    fn params(&self, run: usize) -> LocalFuture<'_, Result<Vec<f32>, StepError>> {
        Box::pin(self[run].params())
    }
    fn state(&self, run: usize) -> LocalFuture<'_, Result<RunState, StepError>> {
        Box::pin(self[run].state())
    }
    fn set_state(&mut self, run: usize, state: &RunState) -> Result<(), ConfigError> {
        self[run].set_state(state)
    }
    fn gradients<'a>(
        &'a mut self,
        run: usize,
        work: StepWork<'a>,
    ) -> LocalFuture<'a, Result<(Vec<f32>, Vec<f32>), StepError>> {
        Box::pin(self[run].gradients(work))
    }
}
