//! Memory-mapped safetensors checkpoints: one file or a diffusers shard set (`*.safetensors.index.json`).
//!
//! Headers are parsed and validated when the set is opened (a truncated file fails there, naming the
//! file); tensor bytes stay in the page cache until a model asks for them, and are converted to f32
//! on demand. Pickle checkpoints are never read.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::tensor::{Dtype, TensorInfo};
use safetensors::SafeTensors;

use crate::error::{Error, Result};

/// Storage dtypes we accept for weights and tensor inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightDtype {
    F32,
    F16,
    Bf16,
}

impl WeightDtype {
    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "f32",
            WeightDtype::F16 => "f16",
            WeightDtype::Bf16 => "bf16",
        }
    }

    fn from_safetensors(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F32 => Some(WeightDtype::F32),
            Dtype::F16 => Some(WeightDtype::F16),
            Dtype::BF16 => Some(WeightDtype::Bf16),
            _ => None,
        }
    }
}

/// One memory-mapped safetensors file with its validated header.
struct MappedFile {
    path: PathBuf,
    mmap: Mmap,
    /// Byte offset of the data section (8-byte length + JSON header).
    data_start: usize,
    tensors: HashMap<String, TensorInfo>,
}

impl MappedFile {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only and lives as long as `MappedFile`. A checkpoint truncated or
        // rewritten by another process while mapped could fault; that is the same contract every
        // safetensors consumer (PyTorch included) accepts for zero-copy loading.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&mmap)
            .map_err(|e| Error::BadSafetensors { path: path.to_path_buf(), reason: e.to_string() })?;
        let tensors = metadata.tensors().into_iter().map(|(name, info)| (name, info.clone())).collect();
        Ok(MappedFile { path: path.to_path_buf(), mmap, data_start: 8 + header_len, tensors })
    }
}

/// A borrowed view of one stored tensor.
pub struct StoredTensor<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub dtype: WeightDtype,
    pub shape: &'a [usize],
    bytes: &'a [u8],
}

impl StoredTensor<'_> {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values converted to f32 (exact for f16/bf16).
    pub fn to_f32(&self) -> Vec<f32> {
        // Stored little-endian and possibly unaligned inside the map: decode byte-wise.
        match self.dtype {
            WeightDtype::F32 => {
                self.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            WeightDtype::F16 => self.bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            WeightDtype::Bf16 => {
                self.bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
        }
    }
}

/// A set of safetensors files seen as one name → tensor map.
pub struct TensorFiles {
    files: Vec<MappedFile>,
    /// tensor name → index into `files`
    index: BTreeMap<String, usize>,
}

impl TensorFiles {
    /// Opens `path`: a `.safetensors` file, or a diffusers shard index (`*.safetensors.index.json`).
    pub fn open(path: &Path) -> Result<Self> {
        let is_index = path.to_string_lossy().ends_with(".index.json");
        if is_index {
            Self::open_sharded(path)
        } else {
            Self::from_files(&[path.to_path_buf()])
        }
    }

    /// Opens the weights of a diffusers component folder: `diffusion_pytorch_model.safetensors`,
    /// or its sharded index, or `model.safetensors` (transformers).
    pub fn open_component(dir: &Path) -> Result<Self> {
        for name in [
            "diffusion_pytorch_model.safetensors",
            "diffusion_pytorch_model.safetensors.index.json",
            "model.safetensors",
            "model.safetensors.index.json",
        ] {
            let p = dir.join(name);
            if p.is_file() {
                return Self::open(&p);
            }
        }
        Err(Error::MissingComponent {
            folder: dir.to_path_buf(),
            missing: "diffusion_pytorch_model.safetensors (or its .index.json)".into(),
        })
    }

    fn open_sharded(index_path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(index_path).map_err(|e| Error::io(index_path, e))?;
        let bad = |reason: String| Error::BadShardIndex { path: index_path.to_path_buf(), reason };
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("has no `weight_map` object".into()))?;
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let mut shard_names: Vec<String> = Vec::new();
        for (tensor, shard) in map {
            let shard = shard.as_str().ok_or_else(|| bad(format!("`weight_map.{tensor}` is not a file name")))?;
            if !shard_names.iter().any(|s| s == shard) {
                shard_names.push(shard.to_string());
            }
        }
        shard_names.sort();
        let paths: Vec<PathBuf> = shard_names.iter().map(|s| dir.join(s)).collect();
        let set = Self::from_files(&paths)?;
        // Every tensor the index promises must be in the shard it names.
        for (tensor, shard) in map {
            let shard = shard.as_str().unwrap_or_default();
            let found = set.index.get(tensor).map(|&i| &set.files[i].path);
            if found.map(|p| p.file_name() != Some(shard.as_ref())).unwrap_or(true) {
                return Err(bad(format!("lists `{tensor}` in `{shard}`, which does not hold it")));
            }
        }
        Ok(set)
    }

    fn from_files(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut index = BTreeMap::new();
        for (i, p) in paths.iter().enumerate() {
            let f = MappedFile::open(p)?;
            for name in f.tensors.keys() {
                index.insert(name.clone(), i);
            }
            files.push(f);
        }
        Ok(TensorFiles { files, index })
    }

    /// Human-readable list of the files, for error messages.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.files.iter().map(|f| format!("`{}`", f.path.display())).collect();
        names.join(", ")
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(|s| s.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The stored tensor `name`, if present. Errors only for an unsupported dtype.
    pub fn get(&self, name: &str) -> Result<Option<StoredTensor<'_>>> {
        let Some(&fi) = self.index.get(name) else { return Ok(None) };
        let file = &self.files[fi];
        // The index was built from these maps, so the lookup cannot miss.
        let Some((key, info)) = file.tensors.get_key_value(name) else { return Ok(None) };
        let dtype = WeightDtype::from_safetensors(info.dtype).ok_or_else(|| Error::TensorDtype {
            name: name.to_string(),
            path: file.path.clone(),
            got: format!("{:?}", info.dtype),
        })?;
        let (a, b) = info.data_offsets;
        // `read_metadata` validated the offsets against the file length.
        let bytes = &file.mmap[file.data_start + a..file.data_start + b];
        Ok(Some(StoredTensor { name: key, path: &file.path, dtype, shape: &info.shape, bytes }))
    }

    /// Loads `name` as f32, checking it exists and has `expected` shape.
    pub fn load_f32(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let t = self.get(name)?.ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
            files: self.describe(),
            expected: expected.to_vec(),
        })?;
        if t.shape != expected {
            return Err(Error::TensorShape {
                name: name.to_string(),
                path: t.path.to_path_buf(),
                expected: expected.to_vec(),
                got: t.shape.to_vec(),
            });
        }
        Ok(t.to_f32())
    }

    /// (parameter count, dtype → count) over every tensor in the set.
    pub fn parameter_count(&self) -> (usize, BTreeMap<&'static str, usize>) {
        let mut total = 0;
        let mut by_dtype = BTreeMap::new();
        for name in self.names() {
            let file = &self.files[self.index[name]];
            let info = &file.tensors[name];
            let n: usize = info.shape.iter().product();
            total += n;
            let d = WeightDtype::from_safetensors(info.dtype).map(|d| d.name()).unwrap_or("other");
            *by_dtype.entry(d).or_insert(0) += n;
        }
        (total, by_dtype)
    }
}

/// Writes named f32 tensors as a safetensors file (used for `sana run` outputs and tests).
pub fn write_f32(path: &Path, tensors: &[(&str, &[usize], &[f32])]) -> Result<()> {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let v = safetensors::tensor::TensorView::new(Dtype::F32, shape.to_vec(), b)
                .map_err(|e| Error::shape("write_f32", format!("tensor `{name}`: {e}")))?;
            Ok((name.to_string(), v))
        })
        .collect::<Result<_>>()?;
    // Written to a temporary name then renamed, so a crash never leaves a half-written file.
    let tmp = path.with_extension("safetensors.partial");
    safetensors::serialize_to_file(views, None, &tmp)
        .map_err(|e| Error::io(&tmp, std::io::Error::other(e.to_string())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
