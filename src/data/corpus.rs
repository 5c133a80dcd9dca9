//! A text split into documents, tokenised, with every tenth document held out
//! for validation. Documents are blocks separated by blank lines; a text with
//! few such blocks (one verse, line of verse or paragraph per line) is split
//! into lines instead. A document may open with a prompt (a verse reference,
//! a dictionary headword) whose targets a fine-tuning run ignores.
//!
//! Documents matter because the lab trains on whole documents, the way a real
//! training set is made of separate texts of their own lengths.

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
    /// Where each document ends (exclusive).
    pub doc_ends: Vec<usize>,
    /// Tokens of each document's prompt (0: none).
    pub prompt_lens: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Corpus {
    pub train: Split,
    pub validation: Split,
    /// Byte length of each document, in order (for statistics).
    pub doc_lengths: Vec<usize>,
    /// Whether documents carry prompts a fine-tuning run can mask.
    pub has_prompts: bool,
}

/// One document: its text and how many of its leading bytes are a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Document<'a> {
    pub text: &'a str,
    pub prompt_bytes: usize,
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

    /// A user's text: documents split on blank lines (or lines), no prompts.
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
        let docs: Vec<Document> = docs.into_iter().map(|text| Document { text, prompt_bytes: 0 }).collect();
        Self::from_documents(&docs)
    }

    /// Documents with their prompts (a shipped corpus); every tenth is held out.
    pub fn from_documents(docs: &[Document]) -> Result<Self, ConfigError> {
        let has_prompts = docs.iter().any(|d| d.prompt_bytes > 0);
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
            let joined = train_docs.iter().map(|d| d.text).collect::<Vec<_>>().join("\n\n");
            let cut = floor_char_boundary(&joined, joined.len() * 9 / 10);
            let (head, tail) = joined.split_at(cut);
            return Ok(Self {
                train: Split::new(&[Document { text: head, prompt_bytes: 0 }]),
                validation: Split::new(&[Document { text: tail, prompt_bytes: 0 }]),
                doc_lengths: docs.iter().map(|d| d.text.len()).collect(),
                has_prompts: false,
            });
        }
        Ok(Self {
            train: Split::new(&train_docs),
            validation: Split::new(&val_docs),
            doc_lengths: docs.iter().map(|d| d.text.len()).collect(),
            has_prompts,
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
    fn new(docs: &[Document]) -> Self {
        let mut tokens = Vec::new();
        let (mut doc_starts, mut doc_ends, mut prompt_lens) = (Vec::new(), Vec::new(), Vec::new());
        for (i, d) in docs.iter().enumerate() {
            if i > 0 {
                tokens.extend(super::encode("\n\n"));
            }
            doc_starts.push(tokens.len());
            tokens.extend(super::encode(d.text));
            doc_ends.push(tokens.len());
            prompt_lens.push(d.prompt_bytes.min(d.text.len()));
        }
        Self { tokens, doc_starts, doc_ends, prompt_lens }
    }

    /// Number of documents.
    pub fn documents(&self) -> usize {
        self.doc_starts.len()
    }

    /// Document `doc`'s tokens.
    pub fn document(&self, doc: usize) -> &[u32] {
        &self.tokens[self.doc_starts[doc]..self.doc_ends[doc]]
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
        assert!(!c.has_prompts);
    }

    #[test]
    fn shipped_corpora_have_documents_and_prompts() {
        // the site's build (no corpora compiled in) reads them as the page
        // hands them over, and must read the same documents
        if !cfg!(feature = "embedded-corpora") {
            for c in &crate::data::CORPORA {
                let e = crate::data::shipped_corpus(c.name).unwrap_err().to_string();
                assert!(e.contains("not been loaded"), "{e}");
                let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/corpus/");
                let files = c.files.iter().map(|f| std::fs::read_to_string(format!("{dir}{f}")).unwrap()).collect();
                crate::data::provide_corpus(c.name, files).unwrap();
            }
            let e = crate::data::provide_corpus("kjv", vec![]).unwrap_err().to_string();
            assert!(e.contains("2 files"), "{e}");
        }
        assert!(crate::data::corpus_available("kjv").unwrap());
        let kjv = crate::data::shipped_corpus("kjv").unwrap();
        assert_eq!(kjv.documents(), 7213, "one document per verse");
        assert_eq!(kjv.validation.documents(), 7213 / 10);
        assert!(kjv.has_prompts);
        let first = crate::data::decode(kjv.train.document(0));
        assert!(first.starts_with("Genesis 1:1 In the beginning"), "{first}");
        assert_eq!(&first[..kjv.train.prompt_lens[0]], "Genesis 1:1 ");
        let devil = crate::data::shipped_corpus("devil").unwrap();
        assert_eq!(devil.documents(), 999, "one document per entry");
        let entry = crate::data::decode(devil.train.document(0));
        assert_eq!(&entry[..devil.train.prompt_lens[0]], "ABASEMENT, n. ");
        for split in [&devil.train, &devil.validation, &kjv.train] {
            for d in 0..split.documents() {
                assert!(split.prompt_lens[d] > 0 && split.prompt_lens[d] < split.document(d).len(), "doc {d}");
            }
        }
        assert!(crate::data::shipped_corpus("nope").unwrap_err().to_string().contains("corpus"));
    }
}
