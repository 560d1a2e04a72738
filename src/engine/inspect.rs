//! What a model folder holds, for `sana inspect`: components, their configs, weight files,
//! parameter counts and dtypes, and whether the transformer's weights match its config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::dit::{config::CLASS_NAME as DIT_CLASS, DitConfig};
use crate::error::Result;
use crate::io::{ConfigFile, ModelFolder, TensorFiles};

#[derive(Debug, Serialize)]
pub struct ComponentReport {
    pub name: String,
    pub folder: PathBuf,
    pub class_name: Option<String>,
    /// Parameters counted from the weight files' headers (None: no weights found).
    pub stored_parameters: Option<usize>,
    pub dtypes: BTreeMap<String, usize>,
    /// Parameters the config's architecture needs, for components we implement.
    pub config_parameters: Option<usize>,
    pub problems: Vec<String>,
    pub config: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct FolderReport {
    pub folder: PathBuf,
    pub components: Vec<ComponentReport>,
}

pub fn inspect(root: &Path) -> Result<FolderReport> {
    let folder = ModelFolder::new(root)?;
    let mut names = folder.components()?;
    if names.is_empty() {
        // a bare component folder
        names.push(String::new());
    }
    let mut components = Vec::new();
    for name in names {
        let dir = if name.is_empty() { root.to_path_buf() } else { root.join(&name) };
        components.push(inspect_component(&name, &dir));
    }
    Ok(FolderReport { folder: root.to_path_buf(), components })
}

fn inspect_component(name: &str, dir: &Path) -> ComponentReport {
    let mut r = ComponentReport {
        name: name.to_string(),
        folder: dir.to_path_buf(),
        class_name: None,
        stored_parameters: None,
        dtypes: BTreeMap::new(),
        config_parameters: None,
        problems: Vec::new(),
        config: BTreeMap::new(),
    };
    let cfg_path = dir.join("config.json");
    if !cfg_path.is_file() {
        // tokenizer/ and scheduler/ have other files; only note what is missing for models
        if !["tokenizer", "scheduler"].contains(&name) {
            r.problems.push(format!("no `{}`", cfg_path.display()));
        }
        return r;
    }
    match ConfigFile::open(&cfg_path) {
        Ok(cfg) => {
            // diffusers configs name their class; transformers configs their architectures
            r.class_name = cfg
                .get::<String>("_class_name")
                .ok()
                .or_else(|| cfg.get::<Vec<String>>("architectures").ok().and_then(|a| a.into_iter().next()));
            r.config = cfg.entries().map(|(k, v)| (k.clone(), v.clone())).collect();
            if r.class_name.as_deref() == Some(DIT_CLASS) {
                match DitConfig::from_file(&cfg) {
                    Ok(c) => r.config_parameters = Some(c.parameter_count()),
                    Err(e) => r.problems.push(e.to_string()),
                }
            }
        }
        Err(e) => r.problems.push(e.to_string()),
    }
    match TensorFiles::open_component(dir) {
        Ok(files) => {
            let (total, by_dtype) = files.parameter_count();
            r.stored_parameters = Some(total);
            r.dtypes = by_dtype.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        }
        Err(e) => r.problems.push(e.to_string()),
    }
    if let (Some(s), Some(c)) = (r.stored_parameters, r.config_parameters) {
        if s != c {
            r.problems.push(format!("weights hold {s} parameters, the config's architecture needs {c}"));
        }
    }
    r
}

/// Thousands separators, as the reports print counts: 2,056,862,144.
pub fn with_commas(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl std::fmt::Display for FolderReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "model folder {}", self.folder.display())?;
        for c in &self.components {
            let label = if c.name.is_empty() { "(component folder)" } else { &c.name };
            writeln!(f, "  {label}: {}", c.class_name.as_deref().unwrap_or("-"))?;
            if let Some(p) = c.stored_parameters {
                let dtypes: Vec<String> = c.dtypes.iter().map(|(d, n)| format!("{d} {}", with_commas(*n))).collect();
                writeln!(f, "    weights: {} parameters ({})", with_commas(p), dtypes.join(", "))?;
            }
            if let Some(p) = c.config_parameters {
                writeln!(f, "    architecture (config.json): {} parameters", with_commas(p))?;
            }
            for key in [
                "in_channels",
                "num_layers",
                "num_attention_heads",
                "attention_head_dim",
                "patch_size",
                "caption_channels",
            ] {
                if let Some(v) = c.config.get(key) {
                    writeln!(f, "    {key}: {v}")?;
                }
            }
            for p in &c.problems {
                writeln!(f, "    problem: {p}")?;
            }
        }
        Ok(())
    }
}
