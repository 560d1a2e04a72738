//! SANA-Video's prompt path (MODEL.md §4; diffusers 0.42.1 `SanaVideoPipeline.encode_prompt` and
//! `_get_gemma_prompt_embeds`): lower-case and strip the prompt, optionally append the motion
//! score, prepend the complex human instruction (CHI) to positive prompts only, tokenize to
//! len(CHI tokens) + 300 − 2, run Gemma-2, keep the BOS state and the last 299 positions. The
//! negative prompt has no CHI and 300 tokens.

use crate::backend::{Backend, Tensor};
use crate::error::{Error, Result};

use super::{Gemma2Encoder, PromptTokenizer};

/// Tokens the transformer sees per prompt.
pub const MAX_SEQUENCE_LENGTH: usize = 300;

/// The negative prompt of the SANA-Video docs and the original inference script.
pub const DEFAULT_NEGATIVE_PROMPT: &str = "A chaotic sequence with misshapen, deformed limbs in heavy motion blur, sudden disappearance, jump cuts, jerky movements, rapid shot changes, frames out of sync, inconsistent character shapes, temporal artifacts, jitter, and ghosting effects, creating a disorienting visual experience.";

/// The CHI lines, `SanaVideoPipeline.__call__`'s default in diffusers 0.42.1 (the embeddings
/// depend on them byte for byte; note the trailing space of the last line). A test holds this
/// equal to the list the fixture script read from diffusers.
pub const DIFFUSERS_INSTRUCTION: [&str; 8] = [
    "Given a user prompt, generate an 'Enhanced prompt' that provides detailed visual descriptions suitable for video generation. Evaluate the level of detail in the user prompt:",
    "- If the prompt is simple, focus on adding specifics about colors, shapes, sizes, textures, motion, and temporal relationships to create vivid and dynamic scenes.",
    "- If the prompt is already detailed, refine and enhance the existing details slightly without overcomplicating.",
    "Here are examples of how to transform or refine prompts:",
    "- User Prompt: A cat sleeping -> Enhanced: A small, fluffy white cat slowly settling into a curled position, peacefully falling asleep on a warm sunny windowsill, with gentle sunlight filtering through surrounding pots of blooming red flowers.",
    "- User Prompt: A busy city street -> Enhanced: A bustling city street scene at dusk, featuring glowing street lamps gradually lighting up, a diverse crowd of people in colorful clothing walking past, and a double-decker bus smoothly passing by towering glass skyscrapers.",
    "Please generate only the enhanced description for the prompt below and avoid including any additional commentary or evaluations:",
    "User Prompt: ",
];

/// Which complex human instruction precedes positive prompts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// diffusers' video wording (the reference our embeddings are checked against).
    Diffusers,
    /// No instruction: `encode_prompt` called without one, as diffusers' own default does.
    None,
}

#[derive(Clone, Debug)]
pub struct PromptOptions {
    /// Appends " motion score: {n}." to each positive prompt (the SANA-Video docs use 30).
    pub motion_score: Option<i32>,
    pub instruction: Instruction,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions { motion_score: Some(30), instruction: Instruction::Diffusers }
    }
}

/// (B, 300, hidden) embeddings and their 0/1 mask (B·300).
pub struct PromptEmbeddings<B: Backend> {
    pub embeds: Tensor<B>,
    pub mask: Vec<f32>,
}

/// diffusers `_text_preprocessing` with `clean_caption=False`: lower-case, strip. Rust's
/// `to_lowercase` follows the same Unicode rules as Python's `str.lower` (final sigma, İ).
fn preprocess(text: &str) -> String {
    text.to_lowercase().trim().to_string()
}

/// Encodes positive prompts (with the motion score and instruction of `opts`) and one negative
/// prompt per positive prompt.
pub fn encode_prompts<B: Backend>(
    be: &B,
    encoder: &Gemma2Encoder<B>,
    tokenizer: &PromptTokenizer,
    prompts: &[String],
    negative: &str,
    opts: &PromptOptions,
) -> Result<(PromptEmbeddings<B>, PromptEmbeddings<B>)> {
    if prompts.is_empty() {
        return Err(Error::InputShape {
            name: "prompt".into(),
            expected: "at least one prompt".into(),
            got: "none".into(),
        });
    }
    let with_motion: Vec<String> = prompts
        .iter()
        .map(|p| match opts.motion_score {
            Some(score) => format!("{p} motion score: {score}."),
            None => p.clone(),
        })
        .collect();
    let positive = match opts.instruction {
        Instruction::Diffusers => {
            let chi = DIFFUSERS_INSTRUCTION.join("\n");
            let max_len = tokenizer.encode(&chi)?.len() + MAX_SEQUENCE_LENGTH - 2;
            let texts: Vec<String> = with_motion.iter().map(|p| format!("{chi}{}", preprocess(p))).collect();
            encode(be, encoder, tokenizer, &texts, max_len)?
        }
        Instruction::None => {
            let texts: Vec<String> = with_motion.iter().map(|p| preprocess(p)).collect();
            encode(be, encoder, tokenizer, &texts, MAX_SEQUENCE_LENGTH)?
        }
    };
    let negatives = vec![preprocess(negative); prompts.len()];
    let negative = encode(be, encoder, tokenizer, &negatives, MAX_SEQUENCE_LENGTH)?;
    Ok((positive, negative))
}

/// Tokenize to `max_len`, run the decoder, keep position 0 and the last 299 (`select_index`).
fn encode<B: Backend>(
    be: &B,
    encoder: &Gemma2Encoder<B>,
    tokenizer: &PromptTokenizer,
    texts: &[String],
    max_len: usize,
) -> Result<PromptEmbeddings<B>> {
    let batch = tokenizer.encode_padded(texts, max_len)?;
    let hidden = encoder.forward(be, &batch.ids, &batch.mask, texts.len())?;
    let h = encoder.config.hidden_size;
    let rows: Vec<usize> = std::iter::once(0).chain(max_len - (MAX_SEQUENCE_LENGTH - 1)..max_len).collect();
    // selection on the host: (B, 300, hidden) is small next to the decoder's own work
    let all = hidden.to_host(be)?;
    let mut embeds = Vec::with_capacity(texts.len() * MAX_SEQUENCE_LENGTH * h);
    let mut mask = Vec::with_capacity(texts.len() * MAX_SEQUENCE_LENGTH);
    for b in 0..texts.len() {
        for &r in &rows {
            embeds.extend_from_slice(&all[(b * max_len + r) * h..][..h]);
            mask.push(batch.mask[b * max_len + r]);
        }
    }
    Ok(PromptEmbeddings { embeds: Tensor::from_vec(be, &[texts.len(), MAX_SEQUENCE_LENGTH, h], embeds)?, mask })
}
