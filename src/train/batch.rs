//! A step's batch of whole sequences, and one micro-batch: B sequences of T
//! positions, right-padded as a data collator pads them, with the checks
//! every backend applies before a step.

use serde::{Deserialize, Serialize};

use crate::model::ConfigError;
use crate::IGNORE_INDEX;

/// The sequences of one optimizer step (each 2..=T+1 tokens) and, for each,
/// how many leading tokens are a prompt: token j of sequence i is a target
/// only when j ≥ prompt_lengths[i] (0: every token after the first counts),
/// as a fine-tuning collator masks prompts with ignore_index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub sequences: Vec<Vec<u32>>,
    pub prompt_lengths: Vec<usize>,
}

impl Batch {
    /// Sequences every token of which (after the first) is a target.
    pub fn unmasked(sequences: Vec<Vec<u32>>) -> Self {
        let prompt_lengths = vec![0; sequences.len()];
        Self { sequences, prompt_lengths }
    }

    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }

    /// Cuts the batch into micro-batches of `micro_batch` sequences in order
    /// (micro-batch g holds sequences g·b .. (g+1)·b), each right-padded to `t`.
    pub fn micro_batches(&self, micro_batch: usize, t: usize) -> Result<Vec<MicroBatch>, ConfigError> {
        if micro_batch == 0 || !self.len().is_multiple_of(micro_batch) {
            return Err(ConfigError::Invalid {
                field: "micro_batch",
                reason: format!("{micro_batch} does not divide the batch of {} sequences", self.len()),
            });
        }
        self.sequences
            .chunks(micro_batch)
            .zip(self.prompt_lengths.chunks(micro_batch))
            .map(|(seqs, prompts)| MicroBatch::from_prompted(seqs, prompts, t))
            .collect()
    }

    /// N: real targets of the whole batch.
    pub fn tokens(&self) -> usize {
        self.sequences.iter().zip(&self.prompt_lengths).map(|(s, &p)| s.len().saturating_sub(p.max(1))).sum()
    }
}

/// B sequences of T positions, right-padded. `inputs` and `targets` are
/// [B,T]; padded targets are `IGNORE_INDEX`.
#[derive(Debug, Clone, PartialEq)]
pub struct MicroBatch {
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
}

impl MicroBatch {
    /// Builds a micro-batch from whole sequences: sequence s gives inputs
    /// s[..n-1] and targets s[1..], right-padded to `t` positions.
    pub fn from_sequences(sequences: &[Vec<u32>], t: usize) -> Result<Self, ConfigError> {
        Self::from_prompted(sequences, &vec![0; sequences.len()], t)
    }

    /// Like `from_sequences`, with the first `prompt_lengths[i]` tokens of
    /// sequence i never a target (see `Batch`).
    pub fn from_prompted(sequences: &[Vec<u32>], prompt_lengths: &[usize], t: usize) -> Result<Self, ConfigError> {
        if prompt_lengths.len() != sequences.len() {
            return Err(ConfigError::Invalid {
                field: "prompt_lengths",
                reason: format!("{} for {} sequences", prompt_lengths.len(), sequences.len()),
            });
        }
        let mut inputs = vec![0u32; sequences.len() * t];
        let mut targets = vec![IGNORE_INDEX; sequences.len() * t];
        for (i, s) in sequences.iter().enumerate() {
            if s.len() < 2 {
                return Err(ConfigError::Invalid {
                    field: "sequence",
                    reason: format!("sequence {i} has {} tokens; at least 2 are needed for one target", s.len()),
                });
            }
            if s.len() - 1 > t {
                return Err(ConfigError::Invalid {
                    field: "sequence",
                    reason: format!("sequence {i} has {} tokens, longer than the context of {} + 1", s.len(), t),
                });
            }
            let p = prompt_lengths[i];
            if p >= s.len() {
                return Err(ConfigError::Invalid {
                    field: "prompt_lengths",
                    reason: format!("sequence {i} has {} tokens, all of them prompt ({p})", s.len()),
                });
            }
            let n = s.len() - 1;
            inputs[i * t..i * t + n].copy_from_slice(&s[..n]);
            // target k is token k+1: a prompt token (k+1 < p) is not a target
            let first_target = p.saturating_sub(1);
            targets[i * t + first_target..i * t + n].copy_from_slice(&s[first_target + 1..]);
        }
        Ok(Self { inputs, targets })
    }

    /// Number of real (non-padded) targets: N_g in docs/DESIGN.md §1.
    pub fn tokens(&self) -> usize {
        self.targets.iter().filter(|&&t| t != IGNORE_INDEX).count()
    }

    /// Refuses a micro-batch that is not [b,t] or holds a token id outside
    /// the vocabulary of `v` (in an input, or in a target that is not
    /// `IGNORE_INDEX`): the same check on every backend. `index` names it.
    pub fn check(&self, index: usize, b: usize, t: usize, v: usize) -> Result<(), ConfigError> {
        if self.inputs.len() != b * t || self.targets.len() != b * t {
            return Err(ConfigError::Invalid {
                field: "batch",
                reason: format!(
                    "micro-batch {index} must hold {b}x{t} inputs and targets, got {} and {}",
                    self.inputs.len(),
                    self.targets.len()
                ),
            });
        }
        if self.inputs.contains(&IGNORE_INDEX) {
            return Err(ConfigError::Invalid { field: "batch", reason: "an input position holds IGNORE_INDEX".into() });
        }
        if let Some(bad) = self.inputs.iter().chain(&self.targets).find(|&&x| x as usize >= v && x != IGNORE_INDEX) {
            return Err(ConfigError::Invalid {
                field: "batch",
                reason: format!("token id {bad} is outside the vocabulary of {v}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_refuses_what_either_backend_would_misread() {
        let mb = MicroBatch::from_sequences(&[vec![1, 2, 3], vec![4, 5]], 4).unwrap();
        assert_eq!(mb.tokens(), 3);
        mb.check(0, 2, 4, 6).unwrap();
        // a prompt of 2 leaves tokens 2.. as targets: sequence 0 keeps one of its two
        let masked = MicroBatch::from_prompted(&[vec![1, 2, 3], vec![4, 5]], &[2, 0], 4).unwrap();
        assert_eq!(masked.targets[..4], [IGNORE_INDEX, 3, IGNORE_INDEX, IGNORE_INDEX]);
        assert_eq!(masked.inputs, mb.inputs);
        assert_eq!(masked.tokens(), 2);
        let batch = Batch { sequences: vec![vec![1, 2, 3], vec![4, 5]], prompt_lengths: vec![2, 0] };
        assert_eq!(batch.tokens(), 2);
        assert_eq!(batch.micro_batches(2, 4).unwrap(), vec![masked]);
        assert!(MicroBatch::from_prompted(&[vec![1, 2]], &[2], 4)
            .unwrap_err()
            .to_string()
            .contains("all of them prompt"));
        assert!(mb.check(0, 2, 3, 6).unwrap_err().to_string().contains("2x3"));
        let mut bad_target = mb.clone();
        bad_target.targets[0] = 6;
        assert!(bad_target.check(2, 2, 4, 6).unwrap_err().to_string().contains("token id 6"));
        let mut bad_input = mb.clone();
        bad_input.inputs[1] = IGNORE_INDEX;
        assert!(bad_input.check(0, 2, 4, 6).unwrap_err().to_string().contains("IGNORE_INDEX"));
    }
}
