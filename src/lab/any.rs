//! The lab behind one type, whatever its backend.

use super::config::{LabConfig, RunSpec};
use super::metrics::{RunMetrics, TensorDistance, TokenWeights};
use super::state::LabState;
use super::Lab;
use crate::model::ConfigError;
use crate::train::{StepError, Trainer};

/// A future awaited on the thread that made it (the browser's, or pollster's).
pub type LocalFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// A `Lab` of any backend behind one type, for a caller that picks the
/// backend at run time (the page: WebGPU, or the CPU where there is none).
/// Implemented once for every `Lab<R>`, so a new backend needs nothing here.
pub trait AnyLab {
    fn config(&self) -> &LabConfig;
    fn specs(&self) -> &[RunSpec];
    fn steps(&self) -> u64;
    fn describe(&self) -> String;
    fn device_lost(&self) -> Option<String>;
    fn halt(&mut self, run: usize) -> Result<(), ConfigError>;
    fn halted(&self) -> &[bool];
    fn step(&mut self) -> LocalFuture<'_, Result<(), StepError>>;
    fn poll(&mut self) -> LocalFuture<'_, Result<Vec<RunMetrics>, StepError>>;
    fn flush(&mut self) -> LocalFuture<'_, Result<Vec<RunMetrics>, StepError>>;
    fn validation_loss(&mut self, sequences: usize) -> LocalFuture<'_, Result<Vec<f64>, StepError>>;
    fn generate<'a>(
        &'a mut self,
        run: usize,
        prompt: &'a str,
        new_tokens: usize,
        temperature: f64,
        seed: u64,
    ) -> LocalFuture<'a, Result<String, StepError>>;
    fn weights(&self, run: usize) -> LocalFuture<'_, Result<Vec<f32>, StepError>>;
    fn token_weights(&self) -> Option<TokenWeights>;
    fn tensor_distances(&self) -> LocalFuture<'_, Result<Vec<TensorDistance>, StepError>>;
    fn state(&self) -> LocalFuture<'_, Result<LabState, StepError>>;
    fn restore<'a>(&'a mut self, state: &'a LabState) -> LocalFuture<'a, Result<(), StepError>>;
}

impl<R: Trainer> AnyLab for Lab<R> {
    fn config(&self) -> &LabConfig {
        &self.config
    }
    fn specs(&self) -> &[RunSpec] {
        Lab::specs(self)
    }
    fn steps(&self) -> u64 {
        Lab::steps(self)
    }
    fn describe(&self) -> String {
        Lab::describe(self)
    }
    fn device_lost(&self) -> Option<String> {
        Lab::device_lost(self)
    }
    fn halt(&mut self, run: usize) -> Result<(), ConfigError> {
        Lab::halt(self, run)
    }
    fn halted(&self) -> &[bool] {
        Lab::halted(self)
    }
    fn step(&mut self) -> LocalFuture<'_, Result<(), StepError>> {
        Box::pin(Lab::step(self))
    }
    fn poll(&mut self) -> LocalFuture<'_, Result<Vec<RunMetrics>, StepError>> {
        Box::pin(Lab::poll(self))
    }
    fn flush(&mut self) -> LocalFuture<'_, Result<Vec<RunMetrics>, StepError>> {
        Box::pin(Lab::flush(self))
    }
    fn validation_loss(&mut self, sequences: usize) -> LocalFuture<'_, Result<Vec<f64>, StepError>> {
        Box::pin(Lab::validation_loss(self, sequences))
    }
    fn generate<'a>(
        &'a mut self,
        run: usize,
        prompt: &'a str,
        new_tokens: usize,
        temperature: f64,
        seed: u64,
    ) -> LocalFuture<'a, Result<String, StepError>> {
        Box::pin(Lab::generate(self, run, prompt, new_tokens, temperature, seed))
    }
    fn weights(&self, run: usize) -> LocalFuture<'_, Result<Vec<f32>, StepError>> {
        Box::pin(Lab::weights(self, run))
    }
    fn token_weights(&self) -> Option<TokenWeights> {
        Lab::token_weights(self)
    }
    fn tensor_distances(&self) -> LocalFuture<'_, Result<Vec<TensorDistance>, StepError>> {
        Box::pin(Lab::tensor_distances(self))
    }
    fn state(&self) -> LocalFuture<'_, Result<LabState, StepError>> {
        Box::pin(Lab::state(self))
    }
    fn restore<'a>(&'a mut self, state: &'a LabState) -> LocalFuture<'a, Result<(), StepError>> {
        Box::pin(Lab::restore(self, state))
    }
}
