//! The text side: Gemma-2 decoder, tokenizer and SANA-Video's prompt handling (MODEL.md §4).

pub mod gemma2;
pub mod prompt;
pub mod tokenizer;

pub use gemma2::{Gemma2Config, Gemma2Encoder};
pub use prompt::{encode_prompts, Instruction, PromptEmbeddings, PromptOptions, DEFAULT_NEGATIVE_PROMPT};
pub use tokenizer::PromptTokenizer;

use crate::error::{Error, Result};
use crate::io::ModelFolder;

/// The text encoder's hidden size must be the transformer's `caption_channels` (when the folder
/// has a transformer): a Gemma from another model would otherwise fail deep inside the forward.
pub fn check_matches_transformer(folder: &ModelFolder, config: &Gemma2Config) -> Result<()> {
    let Ok(dir) = folder.component_dir("transformer") else { return Ok(()) };
    if dir == folder.root {
        return Ok(()); // a bare folder: no transformer beside the text encoder
    }
    let transformer = crate::io::ConfigFile::open(&dir.join("config.json"))?;
    let caption_channels: usize = transformer.get("caption_channels")?;
    if caption_channels != config.hidden_size {
        return Err(Error::CaptionMismatch {
            text_encoder: folder.root.join("text_encoder/config.json"),
            hidden: config.hidden_size,
            transformer: transformer.path.clone(),
            caption_channels,
        });
    }
    Ok(())
}
