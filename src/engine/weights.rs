//! Where model weights come from: a checkpoint's safetensors files, or seeded random values at the
//! same names and shapes (real-size models without downloading a checkpoint, for benchmarks and
//! tests). Both go through one loader that checks every shape against the config.

use std::cell::RefCell;
use std::collections::BTreeSet;

use rayon::prelude::*;

use crate::backend::{Backend, Tensor};
use crate::error::{Error, Result};
use crate::io::TensorFiles;

pub enum WeightSource {
    Files(TensorFiles),
    /// Uniform values, seeded per tensor name so the result does not depend on load order.
    Random {
        seed: u64,
    },
}

/// What a load read: tensor names and parameter count, to report unused checkpoint tensors.
#[derive(Default)]
pub struct LoadLog {
    pub names: BTreeSet<String>,
    pub parameters: usize,
}

/// Loads tensors under a name prefix (`transformer_blocks.7.attn1`), logging what it loads.
pub struct WeightLoader<'a, B: Backend> {
    be: &'a B,
    source: &'a WeightSource,
    prefix: String,
    log: &'a RefCell<LoadLog>,
}

impl<'a, B: Backend> WeightLoader<'a, B> {
    pub fn new(be: &'a B, source: &'a WeightSource, log: &'a RefCell<LoadLog>) -> Self {
        WeightLoader { be, source, prefix: String::new(), log }
    }

    /// A loader for the sub-module `name`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        let prefix = if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) };
        WeightLoader { be: self.be, source: self.source, prefix, log: self.log }
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// Host values of `name`, which must have exactly `shape`.
    pub fn host(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = self.full_name(name);
        let data = match self.source {
            WeightSource::Files(files) => files.load_f32(&full, shape)?,
            WeightSource::Random { seed } => random_values(&full, shape, *seed),
        };
        let mut log = self.log.borrow_mut();
        log.parameters += data.len();
        log.names.insert(full);
        Ok(data)
    }

    /// `name` uploaded to the backend, viewed as `view` (same element count as `shape`).
    pub fn tensor_as(&self, name: &str, shape: &[usize], view: &[usize]) -> Result<Tensor<B>> {
        Tensor::from_vec(self.be, view, self.host(name, shape)?)
    }

    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor<B>> {
        self.tensor_as(name, shape, shape)
    }

    /// Several tensors with the same trailing shape stacked along dim 0 (e.g. to_q | to_k | to_v
    /// into one projection).
    pub fn concat(&self, names: &[&str], shape: &[usize]) -> Result<Tensor<B>> {
        let mut all = Vec::with_capacity(names.len() * shape.iter().product::<usize>());
        for n in names {
            all.extend(self.host(n, shape)?);
        }
        let mut stacked = shape.to_vec();
        stacked[0] *= names.len();
        Tensor::from_vec(self.be, &stacked, all)
    }

    pub fn backend(&self) -> &'a B {
        self.be
    }
}

/// A checkpoint with tensors the architecture does not use is the wrong checkpoint (or a
/// variant we do not implement): name them rather than silently ignore them.
pub fn check_no_unknown_tensors(files: &TensorFiles, log: &LoadLog) -> Result<()> {
    let extra: Vec<&str> = files.names().filter(|n| !log.names.contains(*n)).collect();
    if extra.is_empty() {
        return Ok(());
    }
    Err(Error::UnusedTensors {
        files: files.describe(),
        count: extra.len(),
        first: extra.iter().take(5).map(|s| s.to_string()).collect(),
    })
}

/// Seeded values with plausible magnitudes: matrices U(±1/√fan_in); vectors U(±0.1), centred on 1
/// for norm weights so activations keep their scale through 20 layers.
fn random_values(name: &str, shape: &[usize], seed: u64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
    let (centre, half_width) = if shape.len() == 1 {
        (if name.contains("norm") { 1.0 } else { 0.0 }, 0.1)
    } else {
        (0.0, 1.0 / (fan_in as f32).sqrt())
    };
    // Chunks with their own streams, so real-size models (2B values) generate on every core.
    const CHUNK: usize = 1 << 20;
    let base = seed ^ fnv1a(name.as_bytes());
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(chunk, values)| {
        let mut state = base ^ (chunk as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for v in values {
            let u = (splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            *v = centre + half_width * (2.0 * u - 1.0);
        }
    });
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
