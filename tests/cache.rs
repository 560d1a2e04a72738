//! The latent cache: memory LRU under its byte budget, disk round trip, corrupt and truncated
//! entries discarded with a warning, partial files never listed, gc, and `sana cache`.

use std::collections::BTreeMap;

use sana::engine::cache::{CacheKey, CachedLatent, KeyBuilder, LatentCache};

fn latent(n: usize, fill: f32) -> CachedLatent {
    let meta = BTreeMap::from([("model".to_string(), "tiny".to_string())]);
    CachedLatent::new(vec![1, n], (0..n).map(|i| fill + i as f32 * 0.25).collect(), meta)
}

fn key(i: u64) -> CacheKey {
    KeyBuilder::new("test/v1").u64("i", i).finish()
}

#[test]
fn memory_lru_respects_the_budget() {
    let cache = LatentCache::new(3 * 400, None); // three 100-value entries
    for i in 0..3 {
        cache.put(key(i), latent(100, i as f32));
    }
    assert!(cache.get(&key(0)).is_some()); // 0 is now the most recent
    cache.put(key(3), latent(100, 3.0)); // evicts 1, the least recently used
    assert!(cache.get(&key(1)).is_none());
    for i in [0, 2, 3] {
        assert_eq!(cache.get(&key(i)).unwrap(), latent(100, i as f32));
    }
    assert_eq!(cache.memory_bytes(), 1200);
    cache.put(key(9), latent(1000, 0.0)); // bigger than the budget: not kept in memory
    assert!(cache.get(&key(9)).is_none());
}

#[test]
fn disk_round_trip_survives_a_new_process() {
    let dir = tempfile::tempdir().unwrap();
    LatentCache::new(1 << 20, Some(dir.path().into())).put(key(1), latent(33, 1.5));
    let fresh = LatentCache::new(1 << 20, Some(dir.path().into())); // empty memory
    assert_eq!(fresh.get(&key(1)).unwrap(), latent(33, 1.5));
    assert!(fresh.take_warnings().is_empty());
    let listed = fresh.disk().unwrap().list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key(1).to_string());
}

#[test]
fn corrupt_and_truncated_entries_are_discarded_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let writer = LatentCache::new(1 << 20, Some(dir.path().into()));
    writer.put(key(1), latent(64, 2.0));
    writer.put(key(2), latent(64, 3.0));
    let disk = writer.disk().unwrap();
    // flip one byte of the values of entry 1, cut entry 2 short
    let p1 = disk.path(&key(1));
    let mut bytes = std::fs::read(&p1).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&p1, bytes).unwrap();
    let p2 = disk.path(&key(2));
    let len = std::fs::metadata(&p2).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&p2).unwrap().set_len(len - 10).unwrap();

    let reader = LatentCache::new(1 << 20, Some(dir.path().into()));
    assert!(reader.get(&key(1)).is_none());
    assert!(reader.get(&key(2)).is_none());
    let warnings = reader.take_warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("fails its checksum") && warnings[0].contains("recomputed"), "{warnings:?}");
    assert!(!p1.exists() && !p2.exists(), "corrupt entries are removed");
}

#[test]
fn failed_computation_stores_nothing_and_partials_are_not_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LatentCache::new(1 << 20, Some(dir.path().into()));
    let err = cache.get_or_compute(key(5), || Err(sana::Error::Cancelled)).unwrap_err();
    assert!(matches!(err, sana::Error::Cancelled));
    assert!(cache.get(&key(5)).is_none());
    // a half-written file from a killed process
    let sub = dir.path().join("ab");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join(format!(".{}.123.456.partial", key(6))), b"half").unwrap();
    assert!(cache.disk().unwrap().list().unwrap().is_empty());
    let computed = cache.get_or_compute(key(5), || Ok(latent(8, 0.0))).unwrap();
    assert_eq!(cache.get_or_compute(key(5), || panic!("must not recompute")).unwrap(), computed);
}

#[test]
fn gc_removes_oldest_until_under_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LatentCache::new(1 << 20, Some(dir.path().into()));
    for i in 0..4 {
        cache.put(key(i), latent(256, i as f32));
    }
    let disk = cache.disk().unwrap();
    let one = disk.list().unwrap()[0].bytes;
    let (removed, freed) = disk.gc(2 * one).unwrap();
    assert_eq!(removed, 2);
    assert_eq!(freed, 2 * one);
    assert_eq!(disk.list().unwrap().len(), 2);
}

#[test]
fn cli_cache_ls_rm_gc() {
    let dir = tempfile::tempdir().unwrap();
    LatentCache::new(1 << 20, Some(dir.path().into())).put(key(7), latent(16, 7.0));
    let sana = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
            .args(args)
            .env("SANA_CACHE_DIR", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let k = key(7).to_string();
    assert!(sana(&["cache", "ls"]).contains(&k));
    let json: serde_json::Value = serde_json::from_str(&sana(&["cache", "ls", "--json"])).unwrap();
    assert_eq!(json["entries"][0]["key"], k);
    sana(&["cache", "rm", &k]);
    assert!(!sana(&["cache", "ls"]).contains(&k));
    sana(&["cache", "gc", "--max-mb", "0"]);
}

/// `sana doctor --json` reports the CUDA state (unavailable here unless SANA_GPU_TESTS=1), the
/// cache folder with its entries, and a model folder's components.
#[test]
fn cli_doctor_reports_machine_cache_and_model() {
    let dir = tempfile::tempdir().unwrap();
    LatentCache::new(1 << 20, Some(dir.path().into())).put(key(1), latent(16, 1.0));
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline/tiny-sana-video");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
        .args(["doctor", "--json", "--model"])
        .arg(&model)
        .env("SANA_CACHE_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["cache"]["entries"], 1);
    if std::env::var("SANA_GPU_TESTS").as_deref() != Ok("1") {
        assert_eq!(report["cuda"]["ok"], false);
        assert!(report["cuda"]["error"].as_str().unwrap().contains("cuda:0"));
    }
    let components: Vec<&str> =
        report["model"]["components"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(components.contains(&"transformer") && components.contains(&"text_encoder"), "{components:?}");
    assert!(report["model"]["problems"].as_array().unwrap().is_empty(), "{report}");
}
