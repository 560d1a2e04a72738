//! A diffusers pipeline folder (`model_index.json`, `transformer/`, `vae/`, ...) or a bare component
//! folder (`config.json` + weights), as artists and TDs point us at either.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::{ConfigFile, TensorFiles};

pub struct ModelFolder {
    pub root: PathBuf,
}

impl ModelFolder {
    pub fn new(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::io(root, std::io::Error::new(std::io::ErrorKind::NotFound, "no such model folder")));
        }
        Ok(ModelFolder { root: root.to_path_buf() })
    }

    /// The folder of component `name` (`transformer`, `vae`, ...). A bare component folder (its own
    /// `config.json` directly inside, no `model_index.json`) is accepted as the component itself.
    pub fn component_dir(&self, name: &str) -> Result<PathBuf> {
        let sub = self.root.join(name);
        if sub.join("config.json").is_file() {
            return Ok(sub);
        }
        let is_bare = !self.root.join("model_index.json").is_file() && self.root.join("config.json").is_file();
        if is_bare {
            return Ok(self.root.clone());
        }
        Err(Error::MissingComponent { folder: self.root.clone(), missing: format!("{name}/config.json") })
    }

    pub fn component_config(&self, name: &str) -> Result<ConfigFile> {
        ConfigFile::open(&self.component_dir(name)?.join("config.json"))
    }

    pub fn component_weights(&self, name: &str) -> Result<TensorFiles> {
        TensorFiles::open_component(&self.component_dir(name)?)
    }

    /// Component names listed in `model_index.json`; without one, the usual component folders
    /// that exist (none for a bare component folder).
    pub fn components(&self) -> Result<Vec<String>> {
        const USUAL: [&str; 5] = ["transformer", "text_encoder", "tokenizer", "vae", "scheduler"];
        let index = self.root.join("model_index.json");
        if !index.is_file() {
            return Ok(USUAL.iter().filter(|c| self.root.join(c).is_dir()).map(|c| c.to_string()).collect());
        }
        let cfg = ConfigFile::open(&index)?;
        Ok(cfg.entries().filter(|(k, v)| !k.starts_with('_') && v.is_array()).map(|(k, _)| k.clone()).collect())
    }
}
