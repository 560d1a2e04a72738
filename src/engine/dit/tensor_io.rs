//! The tensor-in / tensor-out form of the transformer used by `sana run dit` and the reference
//! tests: input keys as diffusers' `forward` names them, output `sample`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::TensorFiles;

use super::Timesteps;

/// A host tensor: shape and f32 values.
#[derive(Clone, Debug)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Reads `name` from `files` whatever its stored float dtype; `None` if absent.
    pub fn read(files: &TensorFiles, name: &str) -> Result<Option<Self>> {
        Ok(files.get(name)?.map(|t| HostTensor { shape: t.shape.to_vec(), data: t.to_f32() }))
    }

    pub fn read_required(files: &TensorFiles, name: &str, expected: &str) -> Result<Self> {
        Self::read(files, name)?.ok_or_else(|| Error::InputShape {
            name: name.to_string(),
            expected: format!("{expected} in {}", files.describe()),
            got: "no such tensor".into(),
        })
    }
}

/// The inputs of one transformer forward, on the host.
pub struct DitInputFile {
    /// (B, C, T, H, W)
    pub hidden_states: HostTensor,
    /// (B, L, caption_channels)
    pub encoder_hidden_states: HostTensor,
    pub timesteps: Timesteps,
    /// (B, L), 1 = keep
    pub encoder_attention_mask: Option<HostTensor>,
}

impl DitInputFile {
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_files(&TensorFiles::open(path)?)
    }

    /// `timestep` may be (B,) or hold one value per token, B·N values in any shape (diffusers
    /// flattens it); the forward checks N against the latent.
    pub fn from_files(files: &TensorFiles) -> Result<Self> {
        let hidden_states = HostTensor::read_required(files, "hidden_states", "(B, C, T, H, W) latent")?;
        let encoder_hidden_states =
            HostTensor::read_required(files, "encoder_hidden_states", "(B, L, caption_channels) caption")?;
        let timestep = HostTensor::read_required(files, "timestep", "(B,) or (B, N) timesteps")?;
        let batch = hidden_states.shape.first().copied().unwrap_or(0);
        let timesteps = if timestep.data.len() == batch {
            Timesteps::PerSample(timestep.data)
        } else {
            Timesteps::PerToken(timestep.data)
        };
        let encoder_attention_mask = HostTensor::read(files, "encoder_attention_mask")?;
        Ok(DitInputFile { hidden_states, encoder_hidden_states, timesteps, encoder_attention_mask })
    }
}
