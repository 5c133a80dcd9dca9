//! Deterministic batches of sequences of controlled length spread.
//!
//! A seed decides everything: which documents, how long each sequence is.
//! `spread` goes from 0 (every sequence T+1 tokens: no padding, so naive and
//! corrected accumulation coincide) to 1 (lengths log-uniform between a
//! sixteenth of the context and all of it: heavy padding, where naive
//! accumulation goes wrong).

use std::sync::Arc;

use super::corpus::Corpus;
use crate::model::config::{check_range, ConfigError};
use crate::rng::Rng;
use crate::train::MicroBatch;

#[derive(Debug, Clone)]
pub struct BatchSampler {
    corpus: Arc<Corpus>,
    rng: Rng,
    /// B: sequences per step.
    pub batch: usize,
    /// T: positions per sequence (a sequence has at most T+1 tokens).
    pub seq_len: usize,
    pub spread: f64,
}

impl BatchSampler {
    pub fn new(corpus: Arc<Corpus>, seed: u64, batch: usize, seq_len: usize, spread: f64) -> Result<Self, ConfigError> {
        check_range("spread", spread, 0.0, 1.0)?;
        if batch == 0 {
            return Err(ConfigError::TooSmall { field: "batch", value: 0.0, min: 1.0 });
        }
        if seq_len < 1 {
            return Err(ConfigError::TooSmall { field: "seq_len", value: 0.0, min: 1.0 });
        }
        if corpus.train.tokens.len() < seq_len + 1 {
            return Err(ConfigError::Invalid {
                field: "text",
                reason: format!(
                    "its training part has {} tokens, fewer than one sequence of {} needs",
                    corpus.train.tokens.len(),
                    seq_len + 1
                ),
            });
        }
        Ok(Self { corpus, rng: Rng::new(seed), batch, seq_len, spread })
    }

    /// Shortest sequence (in tokens) the sampler draws at spread 1.
    pub fn min_len(&self) -> usize {
        ((self.seq_len + 1).div_ceil(16)).max(2)
    }

    /// The next B sequences, each 2..=T+1 tokens, each starting at a document.
    pub fn next_batch(&mut self) -> Vec<Vec<u32>> {
        let split = &self.corpus.train;
        let longest = (self.seq_len + 1) as f64;
        let ratio = self.min_len() as f64 / longest;
        (0..self.batch)
            .map(|_| {
                let doc = self.rng.below(split.doc_starts.len());
                let u = self.rng.uniform();
                // log-uniform between longest·ratio^spread and longest
                let len = (longest * ratio.powf(self.spread * u)).round().clamp(2.0, longest) as usize;
                split.tokens[split.window(doc, len)].to_vec()
            })
            .collect()
    }

    /// Full-length sequences from the validation split, the same every call.
    pub fn validation_sequences(&self, count: usize) -> Vec<Vec<u32>> {
        let split = &self.corpus.validation;
        let len = (self.seq_len + 1).min(split.tokens.len());
        if len < 2 {
            return Vec::new();
        }
        let stride = (split.tokens.len() - len).max(1) / count.max(1);
        (0..count).map(|i| split.tokens[i * stride..i * stride + len].to_vec()).collect()
    }
}

/// Cuts B sequences into micro-batches of `micro_batch` in order (micro-batch
/// g holds sequences g·b .. (g+1)·b), each right-padded to `seq_len`.
pub fn split_micro_batches(
    sequences: &[Vec<u32>],
    micro_batch: usize,
    seq_len: usize,
) -> Result<Vec<MicroBatch>, ConfigError> {
    if micro_batch == 0 || !sequences.len().is_multiple_of(micro_batch) {
        return Err(ConfigError::Invalid {
            field: "micro_batch",
            reason: format!("{micro_batch} does not divide the batch of {} sequences", sequences.len()),
        });
    }
    sequences.chunks(micro_batch).map(|chunk| MicroBatch::from_sequences(chunk, seq_len)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Arc<Corpus> {
        Arc::new(Corpus::from_text(crate::data::DEMO_TEXT).unwrap())
    }

    #[test]
    fn same_seed_same_batches_and_spread_controls_padding() {
        let mut a = BatchSampler::new(corpus(), 9, 16, 64, 1.0).unwrap();
        let mut b = BatchSampler::new(corpus(), 9, 16, 64, 1.0).unwrap();
        for _ in 0..5 {
            assert_eq!(a.next_batch(), b.next_batch());
        }
        let lens: Vec<usize> = a.next_batch().iter().map(Vec::len).collect();
        assert!(lens.iter().min() < lens.iter().max(), "spread 1 varies lengths: {lens:?}");
        let mut flat = BatchSampler::new(corpus(), 9, 16, 64, 0.0).unwrap();
        assert!(flat.next_batch().iter().all(|s| s.len() == 65));
    }

    #[test]
    fn micro_batches_cover_exactly_the_batch() {
        let mut s = BatchSampler::new(corpus(), 3, 16, 64, 0.7).unwrap();
        let batch = s.next_batch();
        for b in [1, 2, 4, 8, 16] {
            let mbs = split_micro_batches(&batch, b, 64).unwrap();
            assert_eq!(mbs.len(), 16 / b);
            let total: usize = mbs.iter().map(MicroBatch::tokens).sum();
            assert_eq!(total, batch.iter().map(|s| s.len() - 1).sum::<usize>());
            for (g, mb) in mbs.iter().enumerate() {
                for (i, seq) in batch[g * b..(g + 1) * b].iter().enumerate() {
                    assert_eq!(&mb.inputs[i * 64..i * 64 + seq.len() - 1], &seq[..seq.len() - 1]);
                    assert_eq!(&mb.targets[i * 64..i * 64 + seq.len() - 1], &seq[1..]);
                }
            }
        }
        assert!(split_micro_batches(&batch, 3, 64).unwrap_err().to_string().contains("does not divide"));
        assert!(BatchSampler::new(corpus(), 1, 4, 64, 1.5).unwrap_err().to_string().contains("spread"));
    }
}
