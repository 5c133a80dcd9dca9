//! Text generation's inputs, the same on every backend: the window a
//! continuation starts from and the random draws each pick reads, in f32 so
//! the GPU kernel and its CPU twin see the same numbers and a seed gives the
//! same text on both.

use crate::model::ConfigError;
use crate::rng::Rng;

/// Tokens generated per GPU submission: the forward pass and the pick
/// alternate this many times inside one command buffer before the picks are
/// read back.
pub const SAMPLE_CHUNK: usize = 128;

/// 1/temperature for the pick kernels, 0 meaning greedy; refuses what is not
/// a temperature.
pub fn inverse_temperature(temperature: f64) -> Result<f64, ConfigError> {
    if !temperature.is_finite() || temperature < 0.0 {
        return Err(ConfigError::Invalid {
            field: "temperature",
            reason: format!("must be a finite number >= 0 (0 picks the likeliest token), got {temperature}"),
        });
    }
    Ok(if temperature == 0.0 { 0.0 } else { 1.0 / temperature })
}

/// The window a continuation of `prompt` starts from: its last `t` tokens (a
/// newline for an empty prompt), refused if a token is outside `v`.
pub fn prompt_window(prompt: &[u32], t: usize, v: usize) -> Result<Vec<u32>, ConfigError> {
    if let Some(bad) = prompt.iter().find(|&&x| x as usize >= v) {
        return Err(ConfigError::Invalid { field: "prompt", reason: format!("token {bad} is outside the vocabulary") });
    }
    let context = if prompt.is_empty() { &[b'\n' as u32][..] } else { prompt };
    Ok(context[context.len().saturating_sub(t)..].to_vec())
}

/// The draws `sample_next_token` reads for `k` picks: 1/temperature, then one
/// uniform per pick.
pub fn sample_draws(inv_temperature: f64, k: usize, rng: &mut Rng) -> Vec<f32> {
    std::iter::once(inv_temperature as f32).chain((0..k).map(|_| rng.uniform() as f32)).collect()
}

/// A generation window every backend accepts: 1..=T tokens inside V.
pub fn check_window(window: &[u32], t: usize, v: usize) -> Result<(), ConfigError> {
    if window.is_empty() || window.len() > t {
        return Err(ConfigError::Invalid {
            field: "prompt",
            reason: format!("the window must hold 1 to {t} tokens, got {}", window.len()),
        });
    }
    if let Some(bad) = window.iter().find(|&&x| x as usize >= v) {
        return Err(ConfigError::Invalid { field: "prompt", reason: format!("token {bad} is outside the vocabulary") });
    }
    Ok(())
}
