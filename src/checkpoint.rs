//! Weights (or gradients) as safetensors, named as docs/DESIGN.md §2 names
//! them (GPT-2's module names), so a run can be saved, loaded back, and opened
//! by other tools.
//!
//! The file holds each tensor on its own, in float32 and in PyTorch's shapes;
//! the flat buffer's alignment gaps are not written.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::model::{ConfigError, ParamLayout};

/// Why weights could not be written or read: they do not fit the model's
/// layout, or the file is not what the model needs (each message names the
/// tensor).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Layout(#[from] ConfigError),
    #[error("safetensors: {0}")]
    File(String),
}

fn invalid(reason: String) -> CheckpointError {
    CheckpointError::File(reason)
}

/// Serialises the tensors of `flat` (laid out by `layout`) with optional
/// string metadata.
pub fn to_safetensors(
    layout: &ParamLayout,
    flat: &[f32],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, CheckpointError> {
    layout.check_len(flat.len())?;
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = layout
        .tensors
        .iter()
        .map(|t| {
            let data: Vec<u8> = flat[t.offset..t.offset + t.len].iter().flat_map(|x| x.to_le_bytes()).collect();
            (t.name.clone(), t.shape.clone(), data)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| invalid(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, metadata).map_err(|e| invalid(e.to_string()))
}

/// The names a tensor may have in a file written elsewhere: ours (docs/DESIGN.md's
/// `wte`, `h.0.ln_1.weight`), nanoGPT's state dict (`transformer.` in front,
/// `.weight` after the embeddings), and the latter without its prefix.
fn aliases(name: &str) -> impl Iterator<Item = String> + '_ {
    let module = if name.contains('.') { name.to_string() } else { format!("{name}.weight") };
    [name.to_string(), format!("transformer.{name}"), format!("transformer.{module}"), module].into_iter()
}

/// Reads weights for `layout` from safetensors bytes: every tensor must be
/// present, float32, with the expected shape.
pub fn from_safetensors(layout: &ParamLayout, bytes: &[u8]) -> Result<Vec<f32>, CheckpointError> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| invalid(format!("not a safetensors file ({e})")))?;
    let mut flat = vec![0.0f32; layout.total];
    for t in &layout.tensors {
        let view = aliases(&t.name)
            .find_map(|name| file.tensor(&name).ok())
            .ok_or_else(|| invalid(format!("tensor {} is missing", t.name)))?;
        if view.dtype() != Dtype::F32 {
            return Err(invalid(format!("tensor {} is {:?}, expected F32", t.name, view.dtype())));
        }
        if view.shape() != t.shape.as_slice() {
            return Err(invalid(format!("tensor {} has shape {:?}, expected {:?}", t.name, view.shape(), t.shape)));
        }
        for (dst, chunk) in flat[t.offset..t.offset + t.len].iter_mut().zip(view.data().chunks_exact(4)) {
            *dst = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
    }
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    #[test]
    fn weights_round_trip_and_mismatches_are_named() {
        let layout = ParamLayout::new(&ModelConfig::nano());
        let w = layout.init(4);
        let bytes = to_safetensors(&layout, &w, None).unwrap();
        assert_eq!(from_safetensors(&layout, &bytes).unwrap(), w);
        let other = ParamLayout::new(&ModelConfig { n_embd: 32, ..ModelConfig::nano() });
        let e = from_safetensors(&other, &bytes).unwrap_err().to_string();
        assert!(e.contains("shape"), "{e}");
        assert!(from_safetensors(&layout, b"garbage").unwrap_err().to_string().contains("not a safetensors"));
        // the same file under nanoGPT's state-dict names loads too
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert!(file.names().contains(&"wte") && file.names().contains(&"wpe"), "docs/DESIGN.md's names");
        for nanogpt in [true, false] {
            let renamed: Vec<(String, TensorView)> = file
                .tensors()
                .into_iter()
                .map(|(name, view)| {
                    let module = if name.contains('.') { name } else { format!("{name}.weight") };
                    (if nanogpt { format!("transformer.{module}") } else { module }, view)
                })
                .collect();
            let aliased = safetensors::serialize(renamed, None).unwrap();
            assert_eq!(from_safetensors(&layout, &aliased).unwrap(), w);
        }
        let mut missing = file.tensors();
        missing.retain(|(name, _)| name != "ln_f.bias");
        let e = from_safetensors(&layout, &safetensors::serialize(missing, None).unwrap()).unwrap_err().to_string();
        assert!(e.contains("ln_f.bias is missing"), "{e}");
    }
}
