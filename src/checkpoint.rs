//! Weights (or gradients) as safetensors, named as docs/DESIGN.md §2 names
//! them (GPT-2's module names), so a run can be saved, loaded back, and opened
//! by other tools.
//!
//! The file holds each tensor on its own, in float32 and in PyTorch's shapes;
//! the flat buffer's alignment gaps are not written.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::model::{AdapterLayout, ConfigError, ParamLayout, TensorView as Tensor};

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
    write_tensors(layout.tensors.iter(), flat, metadata)
}

/// Serialises LoRA adapters (or their gradients) of `flat` (laid out by
/// `layout`) under `h.{i}.<module>.lora_A` / `lora_B`, with their rank, α and
/// targets in the metadata.
pub fn adapters_to_safetensors(
    layout: &AdapterLayout,
    flat: &[f32],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, CheckpointError> {
    layout.check_len(flat.len())?;
    let lora = &layout.lora;
    let mut metadata = metadata.unwrap_or_default();
    metadata.insert("lora_rank".into(), lora.rank.to_string());
    metadata.insert("lora_alpha".into(), lora.alpha.to_string());
    let targets: Vec<&str> = lora.targets().iter().map(|t| t.key()).collect();
    metadata.insert("lora_targets".into(), targets.join(","));
    write_tensors(layout.tensors().into_iter(), flat, Some(metadata))
}

fn write_tensors<'a>(
    tensors: impl Iterator<Item = &'a Tensor>,
    flat: &[f32],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, CheckpointError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .map(|t| {
            let data: Vec<u8> = flat[t.range()].iter().flat_map(|x| x.to_le_bytes()).collect();
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
/// present, float32, with the expected shape — except that a position table
/// (`wpe`) longer than the model's context is cut to its first T rows, as
/// nanoGPT's `crop_block_size` does, so a base pretrained at a long context
/// serves every shorter one. Extra tensors (nanoGPT's tied `lm_head`) are
/// ignored.
pub fn from_safetensors(layout: &ParamLayout, bytes: &[u8]) -> Result<Vec<f32>, CheckpointError> {
    let file = open(bytes)?;
    let mut flat = vec![0.0f32; layout.total];
    for t in &layout.tensors {
        let view = aliases(&t.name)
            .find_map(|name| file.tensor(&name).ok())
            .ok_or_else(|| invalid(format!("tensor {} is missing", t.name)))?;
        let shape = view.shape();
        let same_width = t.name == "wpe" && shape.len() == 2 && shape[1] == t.shape[1];
        if shape != t.shape.as_slice() && !(same_width && shape[0] > t.shape[0]) {
            let hint = if same_width {
                format!(
                    ": the file's model has a context of {} positions, shorter than the {} asked for",
                    shape[0], t.shape[0]
                )
            } else {
                String::new()
            };
            return Err(invalid(format!("tensor {} has shape {:?}, expected {:?}{hint}", t.name, shape, t.shape)));
        }
        // row-major: the first T rows of a longer wpe are its first T·C floats
        read_f32(&view, &t.name, &mut flat[t.range()])?;
    }
    Ok(flat)
}

/// Reads LoRA adapters (or their gradients) for `layout` from safetensors
/// bytes written by `adapters_to_safetensors`: every `lora_A` / `lora_B` of
/// the layout present, float32, of its shape.
pub fn adapters_from_safetensors(layout: &AdapterLayout, bytes: &[u8]) -> Result<Vec<f32>, CheckpointError> {
    let file = open(bytes)?;
    let mut flat = vec![0.0f32; layout.total];
    for t in layout.tensors() {
        let view = file.tensor(&t.name).map_err(|_| invalid(format!("tensor {} is missing", t.name)))?;
        if view.shape() != t.shape.as_slice() {
            return Err(invalid(format!("tensor {} has shape {:?}, expected {:?}", t.name, view.shape(), t.shape)));
        }
        read_f32(&view, &t.name, &mut flat[t.range()])?;
    }
    Ok(flat)
}

fn open(bytes: &[u8]) -> Result<SafeTensors<'_>, CheckpointError> {
    SafeTensors::deserialize(bytes).map_err(|e| invalid(format!("not a safetensors file ({e})")))
}

/// The first `dst.len()` floats of a float32 tensor `name`.
fn read_f32(view: &TensorView<'_>, name: &str, dst: &mut [f32]) -> Result<(), CheckpointError> {
    if view.dtype() != Dtype::F32 {
        return Err(invalid(format!("tensor {name} is {:?}, expected F32", view.dtype())));
    }
    for (d, chunk) in dst.iter_mut().zip(view.data().chunks_exact(4)) {
        *d = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Ok(())
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

    #[test]
    fn a_longer_position_table_is_cropped_and_a_shorter_one_named() {
        let long = ModelConfig { block_size: 40, ..ModelConfig::nano() };
        let short = ModelConfig { block_size: 24, ..ModelConfig::nano() };
        let (long_layout, short_layout) = (ParamLayout::new(&long), ParamLayout::new(&short));
        let w = long_layout.init(9);
        let bytes = to_safetensors(&long_layout, &w, None).unwrap();
        let cropped = from_safetensors(&short_layout, &bytes).unwrap();
        let (wpe_long, wpe_short) = (&long_layout.tensors[1], &short_layout.tensors[1]);
        assert_eq!(wpe_short.name, "wpe");
        assert_eq!(
            cropped[wpe_short.offset..wpe_short.offset + wpe_short.len],
            w[wpe_long.offset..wpe_long.offset + wpe_short.len]
        );
        let short_bytes = to_safetensors(&short_layout, &cropped, None).unwrap();
        let e = from_safetensors(&long_layout, &short_bytes).unwrap_err().to_string();
        assert!(e.contains("wpe") && e.contains("context of 24 positions"), "{e}");
    }

    #[test]
    fn adapters_are_written_under_their_peft_names() {
        let layout = ParamLayout::new(&ModelConfig::nano());
        let adapters = AdapterLayout::new(&layout, crate::model::LoraConfig::all_layers(4, 3)).unwrap();
        let flat = adapters.init();
        let bytes = adapters_to_safetensors(&adapters, &flat, None).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let a = file.tensor("h.1.mlp.c_fc.lora_A").unwrap();
        assert_eq!(a.shape(), &[4, 64]);
        assert_eq!(file.tensor("h.0.attn.c_attn.lora_B").unwrap().shape(), &[192, 4]);
        assert_eq!(file.names().len(), 2 * 4 * 2, "2 layers x 4 Linears x (A, B)");
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["lora_rank"], "4");
        assert_eq!(adapters_from_safetensors(&adapters, &bytes).unwrap(), flat);
        let other = AdapterLayout::new(&layout, crate::model::LoraConfig::all_layers(2, 3)).unwrap();
        let e = adapters_from_safetensors(&other, &bytes).unwrap_err().to_string();
        assert!(e.contains("h.0.attn.c_attn.lora_A") && e.contains("[2, 64]"), "{e}");
    }
}
