//! The initial noise: our own seeded standard normal (splitmix64 + Box–Muller), the same on
//! every machine and backend. It is not PyTorch's generator, so a diffusers run is reproduced by
//! giving its initial latents explicitly (`sana generate --noise FILE`).

use super::LatentVideo;
use crate::engine::weights::splitmix64;

pub fn seeded_noise(shape: [usize; 5], seed: u64) -> LatentVideo {
    let n: usize = shape.iter().product();
    let mut state = seed ^ 0x5341_4e41_4e4f_4953; // "SANANOIS"
    let mut uniform = || ((splitmix64(&mut state) >> 11) as f64 + 0.5) / (1u64 << 53) as f64; // (0, 1)
    let mut data = Vec::with_capacity(n + 1);
    while data.len() < n {
        let (u1, u2) = (uniform(), uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let a = 2.0 * std::f64::consts::PI * u2;
        data.push((r * a.cos()) as f32);
        data.push((r * a.sin()) as f32);
    }
    data.truncate(n);
    LatentVideo { shape, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_normal_and_seeded() {
        let a = seeded_noise([1, 4, 5, 16, 16], 7);
        assert_eq!(a, seeded_noise([1, 4, 5, 16, 16], 7));
        assert_ne!(a.data, seeded_noise([1, 4, 5, 16, 16], 8).data);
        let n = a.data.len() as f64;
        let mean = a.data.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = a.data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.05, "mean {mean}, var {var}");
    }
}
