//! A text split into documents, tokenised, with every tenth document held out
//! for validation. Documents are blocks separated by blank lines; a text with
//! few such blocks (one verse, line of verse or paragraph per line) is split
//! into lines instead.
//!
//! Documents matter because the lab draws sequences that start where a
//! document starts, the way a real training set is made of separate texts.

use std::ops::Range;

use crate::model::ConfigError;

/// Fewer tokens than this cannot fill even a short training run.
pub const MIN_TEXT_BYTES: usize = 256;
/// Fewer blank-line blocks than this: split into lines instead.
const MIN_BLOCKS: usize = 64;
/// Texts are held in memory on the page too; refuse what would freeze it.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct Split {
    /// Documents joined by a blank line.
    pub tokens: Vec<u32>,
    /// Where each document starts in `tokens`.
    pub doc_starts: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Corpus {
    pub train: Split,
    pub validation: Split,
    /// Byte length of each document, in order (for statistics).
    pub doc_lengths: Vec<usize>,
}

impl Corpus {
    /// Bytes that must be UTF-8 text.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::Invalid {
            field: "text",
            reason: format!("is not valid UTF-8 (first bad byte at offset {})", e.valid_up_to()),
        })?;
        Self::from_text(text)
    }

    pub fn from_text(text: &str) -> Result<Self, ConfigError> {
        let text = text.replace("\r\n", "\n");
        if text.trim().is_empty() {
            return Err(ConfigError::Invalid { field: "text", reason: "is empty".into() });
        }
        if text.len() < MIN_TEXT_BYTES {
            return Err(ConfigError::Invalid {
                field: "text",
                reason: format!("is too short: {} bytes, at least {MIN_TEXT_BYTES} are needed", text.len()),
            });
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(ConfigError::Invalid {
                field: "text",
                reason: format!("is too large: {} bytes, at most {MAX_TEXT_BYTES} are accepted", text.len()),
            });
        }
        let mut docs: Vec<&str> = text.split("\n\n").map(str::trim).filter(|d| !d.is_empty()).collect();
        if docs.len() < MIN_BLOCKS {
            docs = text.lines().map(str::trim).filter(|d| !d.is_empty()).collect();
        }
        let mut train_docs = Vec::new();
        let mut val_docs = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            // every tenth document, so both splits sample the whole text
            if i % 10 == 9 {
                val_docs.push(*d);
            } else {
                train_docs.push(*d);
            }
        }
        if val_docs.is_empty() {
            // a text with few paragraphs: hold out its last tenth instead
            let joined = train_docs.join("\n\n");
            let cut = floor_char_boundary(&joined, joined.len() * 9 / 10);
            let (head, tail) = joined.split_at(cut);
            return Ok(Self {
                train: Split::new(&[head]),
                validation: Split::new(&[tail]),
                doc_lengths: docs.iter().map(|d| d.len()).collect(),
            });
        }
        Ok(Self {
            train: Split::new(&train_docs),
            validation: Split::new(&val_docs),
            doc_lengths: docs.iter().map(|d| d.len()).collect(),
        })
    }

    pub fn documents(&self) -> usize {
        self.doc_lengths.len()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Split {
    fn new(docs: &[&str]) -> Self {
        let mut tokens = Vec::new();
        let mut doc_starts = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            if i > 0 {
                tokens.extend(super::encode("\n\n"));
            }
            doc_starts.push(tokens.len());
            tokens.extend(super::encode(d));
        }
        Self { tokens, doc_starts }
    }

    /// `len` tokens starting at document `doc`, moved earlier if the text ends first.
    pub fn window(&self, doc: usize, len: usize) -> Range<usize> {
        let start = self.doc_starts[doc].min(self.tokens.len().saturating_sub(len));
        start..(start + len).min(self.tokens.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_texts_are_refused_by_name() {
        let msg = |r: Result<Corpus, ConfigError>| r.unwrap_err().to_string();
        assert!(msg(Corpus::from_text("  \n ")).contains("empty"));
        assert!(msg(Corpus::from_text("tiny")).contains("too short"));
        assert!(msg(Corpus::from_bytes(&[b'a', 0xff, 0xfe])).contains("UTF-8"));
        let c = Corpus::from_text(super::super::DEMO_TEXT).unwrap();
        assert!(c.train.tokens.len() > c.validation.tokens.len() && !c.validation.tokens.is_empty());
        let kjv = Corpus::from_text(crate::data::CORPUS).unwrap();
        assert_eq!(kjv.documents(), 7213, "one document per verse");
        assert_eq!(kjv.validation.doc_starts.len(), 7213 / 10);
    }
}
