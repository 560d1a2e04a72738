//! Models and pipelines, written once against the backend API. Knows nothing of OFX or terminals.

pub mod cache;
pub mod dit;
pub mod inspect;
pub mod pipeline;
pub mod progress;
pub mod sampler;
pub mod text;
pub mod upsampler;
pub mod vae;
pub mod weights;
