//! Text in, token ids out, and batches of sequences.
//!
//! Tokens are bytes of UTF-8 (V = 256): any text a user pastes is
//! representable, nothing needs training, and the same ids come out natively
//! and in the browser. The price is longer sequences than a BPE would give,
//! which suits a model whose whole point is to be watched learning.

pub mod corpus;
pub mod sampler;

pub use corpus::{Corpus, Document};
pub use sampler::{BatchSampler, DataConfig, Packing};

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

/// A corpus shipped with gradlab.
#[derive(Debug, Clone, Copy)]
pub struct ShippedCorpus {
    /// What `--corpus` and the page's `corpus` setting call it.
    pub name: &'static str,
    pub title: &'static str,
    /// What a document is and what its prompt is.
    pub documents: &'static str,
    /// Its files in `data/corpus/`, in the order `shipped_corpus` reads them.
    pub files: &'static [&'static str],
}

/// Every shipped corpus, the default first.
pub const CORPORA: [ShippedCorpus; 2] = [
    ShippedCorpus {
        name: "kjv",
        title: "King James Version, Genesis-Ruth",
        documents: "a verse, its reference (\"Genesis 1:1 \") as the prompt",
        files: &["kjv-genesis-ruth.txt", "kjv-genesis-ruth.refs"],
    },
    ShippedCorpus {
        name: "devil",
        title: "The Devil's Dictionary (Bierce, 1911)",
        documents: "an entry, its headword (\"ABASEMENT, n. \") as the prompt",
        files: &["devils-dictionary.txt"],
    },
];

/// The shipped corpus called `name`, or why there is none.
pub fn shipped(name: &str) -> Result<&'static ShippedCorpus, ConfigError> {
    CORPORA.iter().find(|c| c.name == name).ok_or_else(|| ConfigError::Invalid {
        field: "corpus",
        reason: format!(
            "{name:?} is not a shipped corpus; choose one of {}",
            CORPORA.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// The shipped corpus called `name`, tokenised and split. Its text is
/// compiled in (feature `embedded-corpora`, the default), or else — the
/// site's smaller module — handed over once by the page (`provide_corpus`).
pub fn shipped_corpus(name: &str) -> Result<Corpus, ConfigError> {
    let shipped = shipped(name)?;
    let files = files::of(shipped)?;
    match shipped.name {
        "kjv" => {
            let (verses, references) = (&files[0], &files[1]);
            let texts: Vec<String> = references
                .lines()
                .zip(verses.lines())
                .map(|(reference, verse)| format!("{reference} {verse}"))
                .collect();
            let docs: Vec<Document> = references
                .lines()
                .zip(&texts)
                .map(|(reference, text)| Document { text, prompt_bytes: reference.len() + 1 })
                .collect();
            Corpus::from_documents(&docs)
        }
        "devil" => {
            let docs: Vec<Document> =
                files[0].lines().map(|text| Document { text, prompt_bytes: headword_bytes(text) }).collect();
            Corpus::from_documents(&docs)
        }
        other => unreachable!("{other} is in CORPORA but has no documents"),
    }
}

/// The files of a shipped corpus, compiled in.
#[cfg(feature = "embedded-corpora")]
mod files {
    use super::ShippedCorpus;
    use crate::model::ConfigError;

    /// The King James Version, Genesis to Ruth, one verse per line (public
    /// domain; see data/corpus/SOURCE.md), and each verse's reference.
    const KJV_VERSES: &str = include_str!("../../data/corpus/kjv-genesis-ruth.txt");
    const KJV_REFERENCES: &str = include_str!("../../data/corpus/kjv-genesis-ruth.refs");
    /// Ambrose Bierce's The Devil's Dictionary (1911), one entry per line.
    const DEVILS_DICTIONARY: &str = include_str!("../../data/corpus/devils-dictionary.txt");

    pub fn of(corpus: &ShippedCorpus) -> Result<Vec<String>, ConfigError> {
        let texts: &[&str] = match corpus.name {
            "kjv" => &[KJV_VERSES, KJV_REFERENCES],
            _ => &[DEVILS_DICTIONARY],
        };
        Ok(texts.iter().map(|t| t.to_string()).collect())
    }

    pub fn provide(_: &ShippedCorpus, _: Vec<String>) -> Result<(), ConfigError> {
        Ok(())
    }

    pub fn has(_: &ShippedCorpus) -> bool {
        true
    }
}

/// The files of a shipped corpus, as the page fetched them.
#[cfg(not(feature = "embedded-corpora"))]
mod files {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::ShippedCorpus;
    use crate::model::ConfigError;

    thread_local! {
        static PROVIDED: RefCell<HashMap<&'static str, Vec<String>>> = RefCell::new(HashMap::new());
    }

    pub fn of(corpus: &ShippedCorpus) -> Result<Vec<String>, ConfigError> {
        PROVIDED.with(|p| p.borrow().get(corpus.name).cloned()).ok_or_else(|| ConfigError::Invalid {
            field: "corpus",
            reason: format!("{:?} has not been loaded yet (data/corpus/{})", corpus.name, corpus.files.join(", ")),
        })
    }

    pub fn provide(corpus: &ShippedCorpus, files: Vec<String>) -> Result<(), ConfigError> {
        if files.len() != corpus.files.len() {
            return Err(ConfigError::Invalid {
                field: "corpus",
                reason: format!(
                    "{:?} is {} files ({}), got {}",
                    corpus.name,
                    corpus.files.len(),
                    corpus.files.join(", "),
                    files.len()
                ),
            });
        }
        PROVIDED.with(|p| p.borrow_mut().insert(corpus.name, files));
        Ok(())
    }

    pub fn has(corpus: &ShippedCorpus) -> bool {
        PROVIDED.with(|p| p.borrow().contains_key(corpus.name))
    }
}

/// Hands over the files of shipped corpus `name` (as `ShippedCorpus::files`
/// lists them) where they are not compiled in; a no-op where they are.
pub fn provide_corpus(name: &str, files: Vec<String>) -> Result<(), ConfigError> {
    files::provide(shipped(name)?, files)
}

/// Whether shipped corpus `name` can be read now (compiled in, or provided).
pub fn corpus_available(name: &str) -> Result<bool, ConfigError> {
    Ok(files::has(shipped(name)?))
}

/// A dictionary entry's headword and part of speech: everything up to the
/// first ". ", "? " or "] " ("ABASEMENT, n. ", "CUI BONO? "), never the
/// whole entry.
fn headword_bytes(entry: &str) -> usize {
    let end = entry
        .match_indices(". ")
        .chain(entry.match_indices("? "))
        .chain(entry.match_indices("] "))
        .map(|(i, _)| i + 2)
        .min();
    end.filter(|&e| e < entry.len()).unwrap_or(0)
}

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

    #[test]
    fn headwords_end_at_the_first_sentence_mark() {
        assert_eq!(headword_bytes("ABATIS, n. Rubbish in front of a fort."), "ABATIS, n. ".len());
        assert_eq!(headword_bytes("CUI BONO? [Latin] What good would that do _me_?"), "CUI BONO? ".len());
        assert_eq!(headword_bytes("no mark here"), 0);
    }
}
