//! The disk side of the latent cache: one safetensors file per entry,
//! `<dir>/<first two hex digits>/<key>.safetensors`, written to a temporary name in the same
//! folder and renamed into place (a crash or an abort never leaves a half entry under a real
//! name), with a BLAKE3 checksum of the values in the header, verified on every read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::{CacheKey, CachedLatent};
use crate::error::{Error, Result};

const TENSOR: &str = "latent";
const CHECKSUM: &str = "sana.checksum";
const PARTIAL: &str = ".partial";
/// Partial files older than this belong to no live writer (gc removes them).
const STALE_PARTIAL: Duration = Duration::from_secs(600);

/// One entry on disk, for `sana cache ls`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EntryInfo {
    pub key: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub age_s: u64,
}

pub struct DiskStore {
    pub dir: PathBuf,
}

fn checksum(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl DiskStore {
    pub fn new(dir: PathBuf) -> Self {
        DiskStore { dir }
    }

    pub fn path(&self, key: &CacheKey) -> PathBuf {
        let hex = key.to_string();
        self.dir.join(&hex[..2]).join(format!("{hex}.safetensors"))
    }

    pub fn write(&self, key: &CacheKey, latent: &CachedLatent) -> Result<()> {
        let path = self.path(key);
        let folder = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(folder).map_err(io(folder))?;
        let bytes: Vec<u8> = latent.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut meta: BTreeMap<String, String> = latent.meta.clone();
        meta.insert(CHECKSUM.into(), checksum(&bytes));
        let view = TensorView::new(Dtype::F32, latent.shape.clone(), &bytes)
            .map_err(|e| Error::shape("cache write", format!("latent {:?}: {e}", latent.shape)))?;
        let nonce = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let tmp = folder.join(format!(".{key}.{}.{nonce}{PARTIAL}", std::process::id()));
        let written = safetensors::serialize_to_file([(TENSOR, view)], Some(meta.into_iter().collect()), &tmp)
            .map_err(|e| Error::io(&tmp, std::io::Error::other(e.to_string())))
            .and_then(|_| std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp)))
            .and_then(|_| std::fs::rename(&tmp, &path).map_err(io(&path)));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp); // nothing half-written stays behind
        }
        written
    }

    /// The entry, `Ok(None)` if absent, `Err` if present but unreadable or failing its checksum
    /// (the caller discards it).
    pub fn read(&self, key: &CacheKey) -> Result<Option<CachedLatent>> {
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let corrupt = |reason: String| Error::CacheEntry { path: path.clone(), reason };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let mut meta: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let expected = meta.remove(CHECKSUM).ok_or_else(|| corrupt("has no checksum".into()))?;
        let t = st.tensor(TENSOR).map_err(|e| corrupt(e.to_string()))?;
        if t.dtype() != Dtype::F32 {
            return Err(corrupt(format!("holds {:?}, not f32", t.dtype())));
        }
        if checksum(t.data()) != expected {
            return Err(corrupt("fails its checksum".into()));
        }
        let data = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(Some(CachedLatent::new(t.shape().to_vec(), data, meta)))
    }

    pub fn remove(&self, key: &CacheKey) -> Result<bool> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Every complete entry (partial files are not entries).
    pub fn list(&self) -> Result<Vec<EntryInfo>> {
        Ok(self.files()?.into_iter().filter(|(_, partial)| !partial).map(|(e, _)| e).collect())
    }

    /// (file, is partial) for everything under the cache folder.
    fn files(&self) -> Result<Vec<(EntryInfo, bool)>> {
        let mut out = Vec::new();
        let Ok(top) = std::fs::read_dir(&self.dir) else { return Ok(out) };
        for sub in top.flatten().filter(|e| e.path().is_dir()) {
            let inner = std::fs::read_dir(sub.path()).map_err(io(&sub.path()))?;
            for f in inner.flatten() {
                let path = f.path();
                let name = f.file_name().to_string_lossy().into_owned();
                let Ok(md) = f.metadata() else { continue };
                let age_s = md.modified().ok().and_then(|m| m.elapsed().ok()).map(|d| d.as_secs()).unwrap_or(0);
                let partial = name.ends_with(PARTIAL);
                let Some(key) = name.strip_suffix(".safetensors").filter(|k| CacheKey::parse(k).is_some()) else {
                    if partial {
                        out.push((EntryInfo { key: String::new(), path, bytes: md.len(), age_s }, true));
                    }
                    continue;
                };
                out.push((EntryInfo { key: key.to_string(), path, bytes: md.len(), age_s }, false));
            }
        }
        Ok(out)
    }

    /// Removes stale partial files, then the oldest entries until the rest fit in `max_bytes`.
    /// Returns (files removed, bytes freed).
    pub fn gc(&self, max_bytes: u64) -> Result<(usize, u64)> {
        let (mut removed, mut freed) = (0, 0);
        let mut entries = Vec::new();
        for (e, partial) in self.files()? {
            if partial {
                if e.age_s >= STALE_PARTIAL.as_secs() && std::fs::remove_file(&e.path).is_ok() {
                    removed += 1;
                    freed += e.bytes;
                }
            } else {
                entries.push(e);
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.age_s)); // oldest first
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        for e in entries {
            if total <= max_bytes {
                break;
            }
            std::fs::remove_file(&e.path).map_err(io(&e.path))?;
            total -= e.bytes;
            removed += 1;
            freed += e.bytes;
        }
        Ok((removed, freed))
    }
}
