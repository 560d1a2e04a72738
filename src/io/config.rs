//! `config.json` of a diffusers component, read key by key so that a missing or mistyped key is
//! reported with the file and the key, never as a bare serde position.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

pub struct ConfigFile {
    pub path: PathBuf,
    value: serde_json::Map<String, Value>,
}

impl ConfigFile {
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| Error::BadJson { path: path.to_path_buf(), reason: e.to_string() })?;
        match json {
            Value::Object(value) => Ok(ConfigFile { path: path.to_path_buf(), value }),
            _ => Err(Error::BadJson { path: path.to_path_buf(), reason: "not a JSON object".into() }),
        }
    }

    /// The value of a required key.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let v = self.value.get(key).ok_or_else(|| Error::config_key(&self.path, key, "is missing"))?;
        self.convert(key, v)
    }

    /// The value of an optional key (absent or `null` gives `default`).
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => self.convert(key, v),
        }
    }

    fn convert<T: DeserializeOwned>(&self, key: &str, v: &Value) -> Result<T> {
        serde_json::from_value(v.clone())
            .map_err(|e| Error::config_key(&self.path, key, format!("has value {v} of the wrong type ({e})")))
    }

    /// Checks `_class_name` is one of `expected`.
    pub fn expect_class(&self, expected: &[&str]) -> Result<String> {
        let got: String = self.get("_class_name")?;
        if expected.contains(&got.as_str()) {
            Ok(got)
        } else {
            Err(Error::WrongClass {
                path: self.path.clone(),
                expected: expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(" or "),
                got,
            })
        }
    }

    /// All keys, for `sana inspect`.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.value.iter()
    }
}
