//! Text in, token ids out, and batches of sequences.
//!
//! Tokens are bytes of UTF-8 (V = 256): any text a user pastes is
//! representable, nothing needs training, and the same ids come out natively
//! and in the browser. The price is longer sequences than a BPE would give,
//! which suits a model whose whole point is to be watched learning.

pub mod corpus;
pub mod sampler;

pub use corpus::Corpus;
pub use sampler::{split_micro_batches, BatchSampler};

use crate::model::ConfigError;
use crate::rng::Rng;
use crate::train::MicroBatch;

/// Byte-level tokens of `text`.
pub fn encode(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

/// Text from byte tokens; bytes that do not form valid UTF-8 (a model can
/// emit half a character) become U+FFFD.
pub fn decode(tokens: &[u32]) -> String {
    let bytes: Vec<u8> = tokens.iter().map(|&t| t.min(255) as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// B random windows of T+1 consecutive tokens of `tokens`, as one micro-batch
/// with every position a real target (no padding).
pub fn random_windows(tokens: &[u32], b: usize, t: usize, rng: &mut Rng) -> Result<MicroBatch, ConfigError> {
    if tokens.len() < t + 1 {
        return Err(ConfigError::Invalid {
            field: "text",
            reason: format!("has {} tokens; a window of {} positions needs at least {}", tokens.len(), t, t + 1),
        });
    }
    let sequences: Vec<Vec<u32>> = (0..b)
        .map(|_| {
            let start = rng.below(tokens.len() - t);
            tokens[start..start + t + 1].to_vec()
        })
        .collect();
    MicroBatch::from_sequences(&sequences, t)
}

/// A fixed English text (written for this project) that the demo and the
/// learning test train on: short enough to memorise patterns from quickly,
/// long enough that a model has to learn spelling and word boundaries.
pub const DEMO_TEXT: &str = include_str!("demo_text.txt");

/// The bundled corpus the lab trains on by default: the King James Version,
/// Genesis to Ruth, one verse per line (public domain; see data/corpus/SOURCE.md).
pub const CORPUS: &str = include_str!("../../data/corpus/kjv-genesis-ruth.txt");
/// Its title, for reports.
pub const CORPUS_NAME: &str = "King James Version, Genesis-Ruth";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_windows_are_real_targets() {
        let text = "héllo, wörld";
        assert_eq!(decode(&encode(text)), text);
        let tokens = encode(DEMO_TEXT);
        let mut rng = Rng::new(3);
        let mb = random_windows(&tokens, 4, 16, &mut rng).unwrap();
        assert_eq!(mb.tokens(), 64);
        assert!(random_windows(&tokens[..5], 1, 16, &mut rng).unwrap_err().to_string().contains("text"));
    }
}
