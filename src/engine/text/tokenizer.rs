//! Gemma's tokenizer from the model folder's `tokenizer/tokenizer.json`, through the `tokenizers`
//! crate, with the padding and truncation diffusers asks of it (MODEL.md §4 step 3): BOS from the
//! file's post-processor, truncation to `max_length` keeping the start, right padding with <pad>.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::ModelFolder;

pub struct PromptTokenizer {
    inner: tokenizers::Tokenizer,
    pad_id: u32,
    pub path: PathBuf,
}

/// Token ids and the 0/1 mask of a padded batch, each (B·L).
pub struct TokenBatch {
    pub ids: Vec<u32>,
    pub mask: Vec<f32>,
    pub len: usize,
}

impl PromptTokenizer {
    pub fn from_folder(folder: &ModelFolder) -> Result<Self> {
        let path = folder.root.join("tokenizer").join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::MissingComponent {
                folder: folder.root.clone(),
                missing: "tokenizer/tokenizer.json".into(),
            });
        }
        Self::open(&path)
    }

    pub fn open(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::BadTokenizer { path: path.to_path_buf(), reason };
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
        let pad_id = inner.token_to_id("<pad>").ok_or_else(|| bad("has no <pad> token in its vocabulary".into()))?;
        Ok(PromptTokenizer { inner, pad_id, path: path.to_path_buf() })
    }

    /// Ids of `text` with the special tokens the file's post-processor adds (Gemma: BOS).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner.encode(text, true).map(|e| e.get_ids().to_vec()).map_err(|e| Error::BadTokenizer {
            path: self.path.clone(),
            reason: format!("cannot encode {text:?}: {e}"),
        })
    }

    /// Every text encoded, cut to `max_length` (keeping the start, BOS included) and right-padded.
    pub fn encode_padded(&self, texts: &[String], max_length: usize) -> Result<TokenBatch> {
        let mut ids = Vec::with_capacity(texts.len() * max_length);
        let mut mask = Vec::with_capacity(texts.len() * max_length);
        for t in texts {
            let mut row = self.encode(t)?;
            row.truncate(max_length);
            mask.extend(std::iter::repeat_n(1.0, row.len()).chain(std::iter::repeat_n(0.0, max_length - row.len())));
            ids.extend(row.iter().copied().chain(std::iter::repeat_n(self.pad_id, max_length - row.len())));
        }
        Ok(TokenBatch { ids, mask, len: max_length })
    }
}
