//! A model folder's identity for cache keys: each component's config and weight-file headers
//! (tensor names, dtypes, shapes, offsets) and sizes. Cheap (no tensor data is read) and it
//! changes when any weight file is replaced, re-quantised or resized.

use std::path::Path;

use super::KeyBuilder;
use crate::error::{Error, Result};
use crate::io::ModelFolder;

/// Feeds `folder`'s identity into `key`, component by component.
pub fn add_model_identity(key: &mut KeyBuilder, folder: &ModelFolder) -> Result<()> {
    for component in folder.components()? {
        add_component_identity(key, &folder.root.join(&component), &component)?;
    }
    Ok(())
}

/// Feeds one component folder's identity into `key` (its files labelled `label/name`): how a
/// component from outside the model folder, such as a latent upsampler, enters a key.
pub fn add_component_identity(key: &mut KeyBuilder, dir: &Path, label: &str) -> Result<()> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        key.str("component file", &format!("{label}/{name}"));
        if name.ends_with(".safetensors") {
            key.bytes("header", &safetensors_header(&path)?);
            let len = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            key.u64("size", len);
        } else {
            // configs, tokenizer files, indexes: small, hashed whole
            key.bytes("content", &std::fs::read(&path).map_err(|e| Error::io(&path, e))?);
        }
    }
    Ok(())
}

/// The 8-byte length and the JSON header of a safetensors file.
fn safetensors_header(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| Error::io(path, e))?;
    let n = u64::from_le_bytes(len).min(100 << 20) as usize;
    let mut header = vec![0u8; n];
    f.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    Ok([len.to_vec(), header].concat())
}
