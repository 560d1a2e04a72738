//! The SANA-Video diffusion transformer (MODEL.md §2).

mod block;
pub mod config;
pub mod embed;
mod model;
pub mod tensor_io;

pub use config::DitConfig;
pub use model::{DitInput, SanaVideoTransformer, Timesteps};
pub use tensor_io::{DitInputFile, HostTensor};
