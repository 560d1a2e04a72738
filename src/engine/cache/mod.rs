//! The latent cache (DESIGN.md §1, §7): results keyed by a hash of everything that produced them,
//! kept in memory (LRU under a byte budget) and on disk (`SANA_CACHE_DIR`), so a Refine
//! downstream of a Base never re-encodes pixels and an unchanged re-render costs nothing. A
//! corrupt or truncated disk entry is discarded with a warning and reported as a miss; only
//! complete results are ever put, so a cancelled run leaves nothing behind.

mod identity;
mod key;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Result;
pub use identity::{add_component_identity, add_model_identity};
pub use key::{CacheKey, KeyBuilder};
pub use store::{DiskStore, EntryInfo};

/// A cached result: an f32 tensor and string metadata (model, fps, …). Clones share the values.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedLatent {
    pub shape: Vec<usize>,
    pub data: Arc<Vec<f32>>,
    pub meta: BTreeMap<String, String>,
}

impl CachedLatent {
    pub fn new(shape: Vec<usize>, data: Vec<f32>, meta: BTreeMap<String, String>) -> Self {
        CachedLatent { shape, data: Arc::new(data), meta }
    }

    fn bytes(&self) -> u64 {
        (self.data.len() * 4) as u64
    }
}

/// `SANA_CACHE_DIR`, else `$XDG_CACHE_HOME/sana-ofx/latents`, else `~/.cache/sana-ofx/latents`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SANA_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(xdg) => PathBuf::from(xdg),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("sana-ofx").join("latents"))
}

struct Memory {
    entries: HashMap<CacheKey, (CachedLatent, u64)>,
    clock: u64,
    bytes: u64,
}

pub struct LatentCache {
    memory: Mutex<Memory>,
    budget_bytes: u64,
    disk: Option<DiskStore>,
    warnings: Mutex<Vec<String>>,
}

impl LatentCache {
    /// A cache holding up to `budget_bytes` in memory, backed by `disk_dir` when given.
    pub fn new(budget_bytes: u64, disk_dir: Option<PathBuf>) -> Self {
        LatentCache {
            memory: Mutex::new(Memory { entries: HashMap::new(), clock: 0, bytes: 0 }),
            budget_bytes,
            disk: disk_dir.map(DiskStore::new),
            warnings: Mutex::new(Vec::new()),
        }
    }

    pub fn disk(&self) -> Option<&DiskStore> {
        self.disk.as_ref()
    }

    /// Memory first, then disk (a disk hit is promoted to memory).
    pub fn get(&self, key: &CacheKey) -> Option<CachedLatent> {
        if let Some(hit) = self.memory_get(key) {
            return Some(hit);
        }
        let disk = self.disk.as_ref()?;
        match disk.read(key) {
            Ok(Some(latent)) => {
                self.memory_put(*key, latent.clone());
                Some(latent)
            }
            Ok(None) => None,
            Err(e) => {
                let removed = disk.remove(key).is_ok();
                self.warn(format!(
                    "{e}; {}",
                    if removed { "discarded, it will be recomputed" } else { "could not remove it" }
                ));
                None
            }
        }
    }

    /// Stores a complete result in memory and on disk. A disk failure (full, read-only) is a
    /// warning, not an error: the result is still served from memory.
    pub fn put(&self, key: CacheKey, latent: CachedLatent) {
        if let Some(disk) = &self.disk {
            if let Err(e) = disk.write(&key, &latent) {
                self.warn(format!("could not store cache entry {key} on disk: {e}"));
            }
        }
        self.memory_put(key, latent);
    }

    /// Warnings since the last call (corrupt entries discarded, disk write failures).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock())
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory.lock().bytes
    }

    fn warn(&self, message: String) {
        self.warnings.lock().push(message);
    }

    fn memory_get(&self, key: &CacheKey) -> Option<CachedLatent> {
        let mut m = self.memory.lock();
        m.clock += 1;
        let clock = m.clock;
        m.entries.get_mut(key).map(|(latent, used)| {
            *used = clock;
            latent.clone()
        })
    }

    fn memory_put(&self, key: CacheKey, latent: CachedLatent) {
        let size = latent.bytes();
        if size > self.budget_bytes {
            return; // larger than the whole budget: disk only
        }
        let mut m = self.memory.lock();
        m.clock += 1;
        let clock = m.clock;
        if let Some((old, _)) = m.entries.insert(key, (latent, clock)) {
            m.bytes -= old.bytes();
        }
        m.bytes += size;
        while m.bytes > self.budget_bytes {
            // least recently used first
            let Some(oldest) = m.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| *k) else { break };
            if let Some((gone, _)) = m.entries.remove(&oldest) {
                m.bytes -= gone.bytes();
            }
        }
    }

    /// Convenience for callers: the cached value, or `compute` run and its result stored. An
    /// error (cancellation included) stores nothing.
    pub fn get_or_compute(
        &self,
        key: CacheKey,
        compute: impl FnOnce() -> Result<CachedLatent>,
    ) -> Result<CachedLatent> {
        if let Some(hit) = self.get(&key) {
            return Ok(hit);
        }
        let latent = compute()?;
        self.put(key, latent.clone());
        Ok(latent)
    }
}
