//! What several commands share: the lab's arguments, loading a corpus, and
//! writing files with the path in the error.

use std::sync::Arc;

use gradlab::data::Corpus;

pub type AnyError = Box<dyn std::error::Error>;

/// The lab's data and model, shared by `sweep` and `export-grads`.
#[derive(clap::Args)]
pub struct LabArgs {
    /// Model size: nano, micro or small.
    #[arg(long, default_value = "nano")]
    pub preset: String,
    /// Effective batch B (sequences per optimizer step).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Sequence-length spread: 0 = all full length (no padding), 1 = widely varying.
    #[arg(long, default_value_t = 1.0)]
    pub spread: f64,
    /// Seeds the weights and every batch.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Train on this UTF-8 file instead of the bundled corpus.
    #[arg(long)]
    pub text: Option<std::path::PathBuf>,
}

impl LabArgs {
    /// The corpus to train on and its name for reports.
    pub fn corpus(&self) -> Result<(Arc<Corpus>, String), AnyError> {
        match &self.text {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| format!("--text {}: {e}", path.display()))?;
                let corpus = Corpus::from_bytes(&bytes).map_err(|e| format!("--text {}: {e}", path.display()))?;
                Ok((Arc::new(corpus), path.display().to_string()))
            }
            None => Ok((Arc::new(Corpus::from_text(gradlab::data::CORPUS)?), gradlab::data::CORPUS_NAME.to_string())),
        }
    }
}

pub fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), AnyError> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()).into())
}
