//! Deterministic batches of whole documents, the way training data is made.
//!
//! A seed decides everything. Two ways to turn documents into sequences of
//! at most T+1 tokens (`Packing`):
//! - `padded`: one document per sequence, truncated only past T+1 and
//!   right-padded, as fine-tuning collators do: micro-batches hold different
//!   token counts, which is where naive accumulation goes wrong;
//! - `packed`: documents concatenated and cut into full windows of T+1, as
//!   pretraining does: every micro-batch holds the same count and the
//!   strategies agree.
//!
//! `spread` selects documents rather than cutting them: 1 draws from every
//! document, 0 only from the longest (those that fill the context, if any),
//! and in between from those at least as long as the (1 − spread) quantile
//! of lengths. With `mask_prompt` each document's prompt is not a target.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::corpus::{Corpus, Split};
use crate::model::config::{check_range, ConfigError};
use crate::rng::Rng;
use crate::train::Batch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Packing {
    Padded,
    Packed,
}

impl std::str::FromStr for Packing {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "padded" => Ok(Packing::Padded),
            "packed" => Ok(Packing::Packed),
            other => Err(ConfigError::Invalid {
                field: "packing",
                reason: format!("{other:?} is not one of padded, packed"),
            }),
        }
    }
}

/// How documents become a step's sequences.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub packing: Packing,
    /// 0 = only the longest documents, 1 = every document.
    pub spread: f64,
    /// Fine-tuning: a document's prompt tokens are not targets.
    pub mask_prompt: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self { packing: Packing::Padded, spread: 1.0, mask_prompt: false }
    }
}

impl DataConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("spread", self.spread, 0.0, 1.0)?;
        if self.mask_prompt && self.packing == Packing::Packed {
            return Err(ConfigError::Invalid {
                field: "mask_prompt",
                reason: "needs one document per sequence (packing=padded); packed windows cut across prompts".into(),
            });
        }
        Ok(())
    }
}

/// Documents of one split a sampler may draw, given T and the spread.
#[derive(Debug, Clone)]
struct Pool {
    docs: Vec<usize>,
}

impl Pool {
    fn new(split: &Split, longest: usize, spread: f64) -> Self {
        let capped = |d: usize| split.document(d).len().min(longest);
        let mut lengths: Vec<usize> = (0..split.documents()).map(capped).filter(|&l| l >= 2).collect();
        lengths.sort_unstable();
        let threshold = match lengths.len() {
            0 => usize::MAX,
            n => lengths[(((1.0 - spread) * (n - 1) as f64).round() as usize).min(n - 1)],
        };
        Self { docs: (0..split.documents()).filter(|&d| capped(d) >= threshold.max(2)).collect() }
    }
}

#[derive(Debug, Clone)]
pub struct BatchSampler {
    corpus: Arc<Corpus>,
    rng: Rng,
    train_pool: Pool,
    validation_pool: Pool,
    /// B: sequences per step.
    pub batch: usize,
    /// T: positions per sequence (a sequence has at most T+1 tokens).
    pub seq_len: usize,
    pub data: DataConfig,
}

/// Seeds the validation draw: the same held-out sequences every call.
const VALIDATION_SEED: u64 = 0x7A11_DA7E;

impl BatchSampler {
    pub fn new(
        corpus: Arc<Corpus>,
        seed: u64,
        batch: usize,
        seq_len: usize,
        data: DataConfig,
    ) -> Result<Self, ConfigError> {
        data.validate()?;
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
        if data.mask_prompt && !corpus.has_prompts {
            return Err(ConfigError::Invalid {
                field: "mask_prompt",
                reason: "this text has no prompts to mask; use a shipped corpus (kjv, devil)".into(),
            });
        }
        let train_pool = Pool::new(&corpus.train, seq_len + 1, data.spread);
        if train_pool.docs.is_empty() {
            return Err(ConfigError::Invalid {
                field: "text",
                reason: "has no document of at least 2 tokens to train on".into(),
            });
        }
        let validation_pool = Pool::new(&corpus.validation, seq_len + 1, data.spread);
        Ok(Self { corpus, rng: Rng::new(seed), train_pool, validation_pool, batch, seq_len, data })
    }

    /// Where the draw stands: `set_position` of it makes the same batches follow.
    pub fn position(&self) -> u64 {
        self.rng.state()
    }

    pub fn set_position(&mut self, position: u64) {
        self.rng = Rng::from_state(position);
    }

    /// The next B sequences.
    pub fn next_batch(&mut self) -> Batch {
        draw(&self.corpus.train, &self.train_pool, &mut self.rng, self.batch, self.seq_len, self.data)
    }

    /// `count` held-out sequences drawn the same way as training batches,
    /// the same every call.
    pub fn validation_batch(&self, count: usize) -> Batch {
        let split = &self.corpus.validation;
        if self.validation_pool.docs.is_empty() || split.tokens.len() < 2 {
            return Batch::unmasked(Vec::new());
        }
        draw(split, &self.validation_pool, &mut Rng::new(VALIDATION_SEED), count, self.seq_len, self.data)
    }
}

fn draw(split: &Split, pool: &Pool, rng: &mut Rng, count: usize, seq_len: usize, data: DataConfig) -> Batch {
    let longest = seq_len + 1;
    let mut batch = Batch::unmasked(Vec::with_capacity(count));
    for _ in 0..count {
        match data.packing {
            Packing::Padded => {
                let doc = pool.docs[rng.below(pool.docs.len())];
                let tokens = split.document(doc);
                let len = tokens.len().min(longest);
                batch.sequences.push(tokens[..len].to_vec());
                let prompt = if data.mask_prompt { split.prompt_lens[doc].min(len - 1) } else { 0 };
                batch.prompt_lengths.push(prompt);
            }
            Packing::Packed => {
                // a full window of the documents as one stream
                let len = longest.min(split.tokens.len());
                let start = rng.below(split.tokens.len() - len + 1);
                batch.sequences.push(split.tokens[start..start + len].to_vec());
                batch.prompt_lengths.push(0);
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Arc<Corpus> {
        Arc::new(crate::data::shipped_corpus("kjv").unwrap())
    }

    fn config(packing: Packing, spread: f64, mask_prompt: bool) -> DataConfig {
        DataConfig { packing, spread, mask_prompt }
    }

    #[test]
    fn same_seed_same_batches_and_spread_selects_documents() {
        let data = config(Packing::Padded, 1.0, false);
        let mut a = BatchSampler::new(corpus(), 9, 16, 64, data).unwrap();
        let mut b = BatchSampler::new(corpus(), 9, 16, 64, data).unwrap();
        for _ in 0..5 {
            assert_eq!(a.next_batch(), b.next_batch());
        }
        // whole documents: each sequence is a verse, cut only past T+1
        let c = corpus();
        for _ in 0..20 {
            for s in a.next_batch().sequences {
                assert!(s.len() <= 65);
                let doc = (0..c.train.documents()).find(|&d| c.train.document(d).starts_with(&s)).unwrap();
                assert!(s.len() == 65 || s.len() == c.train.document(doc).len(), "a short sequence is a whole verse");
            }
        }
        let lens: Vec<usize> = (0..10).flat_map(|_| a.next_batch().sequences).map(|s| s.len()).collect();
        assert!(lens.iter().min() < lens.iter().max(), "spread 1 varies lengths: {lens:?}");
        let mut longest = BatchSampler::new(corpus(), 9, 16, 64, config(Packing::Padded, 0.0, false)).unwrap();
        assert!(longest.next_batch().sequences.iter().all(|s| s.len() == 65));
        let mut packed = BatchSampler::new(corpus(), 9, 16, 64, config(Packing::Packed, 1.0, false)).unwrap();
        assert!(packed.next_batch().sequences.iter().all(|s| s.len() == 65));
    }

    #[test]
    fn prompts_are_masked_only_when_asked() {
        let mut plain = BatchSampler::new(corpus(), 3, 8, 64, config(Packing::Padded, 1.0, false)).unwrap();
        assert!(plain.next_batch().prompt_lengths.iter().all(|&p| p == 0));
        let mut masked = BatchSampler::new(corpus(), 3, 8, 64, config(Packing::Padded, 1.0, true)).unwrap();
        let batch = masked.next_batch();
        for (s, &p) in batch.sequences.iter().zip(&batch.prompt_lengths) {
            let text = crate::data::decode(&s[..p]);
            assert!(text.ends_with(' ') && text.contains(':'), "the reference is the prompt: {text:?}");
        }
        let v = masked.validation_batch(32);
        assert_eq!(v, masked.validation_batch(32), "the same held-out draw every call");
        assert!(v.prompt_lengths.iter().all(|&p| p > 0));
        let e = BatchSampler::new(corpus(), 1, 4, 64, config(Packing::Packed, 1.0, true)).unwrap_err();
        assert!(e.to_string().contains("mask_prompt"), "{e}");
        let user = Arc::new(Corpus::from_text(crate::data::DEMO_TEXT).unwrap());
        let e = BatchSampler::new(user, 1, 4, 64, config(Packing::Padded, 1.0, true)).unwrap_err();
        assert!(e.to_string().contains("no prompts"), "{e}");
        let e = BatchSampler::new(corpus(), 1, 4, 64, config(Packing::Padded, 1.5, false)).unwrap_err();
        assert!(e.to_string().contains("spread"), "{e}");
    }

    #[test]
    fn micro_batches_cover_exactly_the_batch() {
        let mut s = BatchSampler::new(corpus(), 3, 16, 64, config(Packing::Padded, 0.7, true)).unwrap();
        let batch = s.next_batch();
        for b in [1, 2, 4, 8, 16] {
            let mbs = batch.micro_batches(b, 64).unwrap();
            assert_eq!(mbs.len(), 16 / b);
            let total: usize = mbs.iter().map(|m| m.tokens()).sum();
            assert_eq!(total, batch.tokens());
            for (g, mb) in mbs.iter().enumerate() {
                for (i, seq) in batch.sequences[g * b..(g + 1) * b].iter().enumerate() {
                    assert_eq!(&mb.inputs[i * 64..i * 64 + seq.len() - 1], &seq[..seq.len() - 1]);
                }
            }
        }
        assert!(batch.micro_batches(3, 64).unwrap_err().to_string().contains("does not divide"));
    }
}
