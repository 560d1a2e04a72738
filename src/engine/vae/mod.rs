//! Video autoencoders (MODEL.md §3): latents ↔ frames. The Wan2.1 VAE (480p model) so far; the
//! LTX-2 VAE (720p model, refiner) is next. Clips are channels-last on the backend and streamed
//! over time (see `clip`).

pub mod clip;
pub mod wan;

pub use wan::{check_frame_count, WanConfig, WanVae};
