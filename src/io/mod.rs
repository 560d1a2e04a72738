//! Reading what lies on disk: diffusers model folders (config.json + safetensors weights) and
//! tensor files for the `sana run` commands.

pub mod config;
pub mod frames;
pub mod model_folder;
pub mod safetensors;

pub use self::config::ConfigFile;
pub use self::model_folder::ModelFolder;
pub use self::safetensors::{write_f32, TensorFiles, WeightDtype};
