//! Cache keys: a BLAKE3 hash of everything that changes a result (model identity, every
//! parameter, prompt, seed, input content). Fields are labelled and length-prefixed, so
//! ("ab", "c") and ("a", "bc") never collide and adding a field changes every key.

use std::fmt;

/// 32-byte key, shown as 64 hex digits (the entry's file name on disk).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({self})")
    }
}

impl CacheKey {
    /// Parses 64 hex digits (as `sana cache rm` takes them).
    pub fn parse(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(CacheKey(out))
    }
}

/// Builds a key from labelled fields, in a fixed order chosen by the caller.
pub struct KeyBuilder(blake3::Hasher);

impl KeyBuilder {
    /// `kind` names what is cached ("base-latents/v1"): bump its version when the producing
    /// computation changes, so stale entries stop matching.
    pub fn new(kind: &str) -> Self {
        let mut b = KeyBuilder(blake3::Hasher::new());
        b.bytes("kind", kind.as_bytes());
        b
    }

    pub fn bytes(&mut self, label: &str, value: &[u8]) -> &mut Self {
        for part in [label.as_bytes(), value] {
            self.0.update(&(part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }

    pub fn str(&mut self, label: &str, value: &str) -> &mut Self {
        self.bytes(label, value.as_bytes())
    }

    pub fn u64(&mut self, label: &str, value: u64) -> &mut Self {
        self.bytes(label, &value.to_le_bytes())
    }

    /// Floats by their bits: 0.1 and 0.1000001 are different parameters.
    pub fn f64(&mut self, label: &str, value: f64) -> &mut Self {
        self.bytes(label, &value.to_bits().to_le_bytes())
    }

    /// A tensor's shape and values (an input plate's content).
    pub fn tensor(&mut self, label: &str, shape: &[usize], data: &[f32]) -> &mut Self {
        let shape_bytes: Vec<u8> = shape.iter().flat_map(|&d| (d as u64).to_le_bytes()).collect();
        self.bytes(&format!("{label}.shape"), &shape_bytes);
        let data_bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.bytes(&format!("{label}.data"), &data_bytes)
    }

    pub fn finish(&self) -> CacheKey {
        CacheKey(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_separated_and_ordered() {
        let a = KeyBuilder::new("t").str("x", "ab").str("y", "c").finish();
        let b = KeyBuilder::new("t").str("x", "a").str("y", "bc").finish();
        let c = KeyBuilder::new("t").str("y", "c").str("x", "ab").finish();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, KeyBuilder::new("t").str("x", "ab").str("y", "c").finish());
        assert_ne!(a, KeyBuilder::new("u").str("x", "ab").str("y", "c").finish());
        assert_ne!(KeyBuilder::new("t").f64("s", 0.1).finish(), KeyBuilder::new("t").f64("s", 0.1000001).finish());
    }

    #[test]
    fn hex_round_trip() {
        let k = KeyBuilder::new("t").u64("seed", 42).finish();
        assert_eq!(CacheKey::parse(&k.to_string()), Some(k));
        assert_eq!(CacheKey::parse("xyz"), None);
        assert_eq!(CacheKey::parse(&"g".repeat(64)), None);
    }
}
