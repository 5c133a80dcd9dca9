//! One micro-batch: B sequences of T positions, right-padded as a data
//! collator pads them, and the checks every backend applies before a step.

use crate::model::ConfigError;
use crate::IGNORE_INDEX;

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
            let n = s.len() - 1;
            inputs[i * t..i * t + n].copy_from_slice(&s[..n]);
            targets[i * t..i * t + n].copy_from_slice(&s[1..]);
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
        assert!(mb.check(0, 2, 3, 6).unwrap_err().to_string().contains("2x3"));
        let mut bad_target = mb.clone();
        bad_target.targets[0] = 6;
        assert!(bad_target.check(2, 2, 4, 6).unwrap_err().to_string().contains("token id 6"));
        let mut bad_input = mb.clone();
        bad_input.inputs[1] = IGNORE_INDEX;
        assert!(bad_input.check(0, 2, 4, 6).unwrap_err().to_string().contains("IGNORE_INDEX"));
    }
}
