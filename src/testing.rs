//! Comparison helpers and the tolerances of DESIGN.md §5, in one place, for the reference tests
//! (tests/), the CUDA-vs-CPU checks and `sana` commands that compare tensors.

/// Tolerances (relative L2 error). A failing comparison is a question to investigate; these
/// numbers stay where DESIGN.md §5 put them.
pub mod tolerance {
    /// Our f32 CPU transformer against the diffusers f32 reference.
    pub const TRANSFORMER_F32: f64 = 1e-5;
    /// Our f32 CPU backend where the reference itself rounds to lower precision than f32.
    pub const REFERENCE_LOW_PRECISION: f64 = 1e-4;
    /// Our f32 CPU autoencoders against the diffusers f32 reference (issue 5: deep conv stacks
    /// accumulate f32 rounding in a different order than PyTorch's convolutions).
    pub const VAE_F32: f64 = 1e-4;
    /// Our f32 CPU LTX-2 latent upsampler against the diffusers f32 reference (DESIGN.md §5's f32
    /// bound: its 20 convs run at one resolution step, not the VAE's deep stack).
    pub const UPSAMPLER_F32: f64 = 1e-5;
    /// CUDA (bf16) against the CPU backend, whole forward.
    pub const CUDA_END_TO_END: f64 = 1e-2;
    /// CUDA (bf16) against the CPU backend, one kernel.
    pub const CUDA_KERNEL: f64 = 3e-3;
}

/// How far `ours` is from `reference`: relative L2, the worst element and the first few pairs.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub rel_l2: f64,
    pub max_abs: f64,
    pub worst_index: usize,
    pub worst: (f32, f32),
    pub first: Vec<(f32, f32)>,
    pub non_finite: usize,
    pub len: usize,
}

pub fn compare(ours: &[f32], reference: &[f32]) -> Comparison {
    assert_eq!(ours.len(), reference.len(), "compare: lengths differ");
    let (mut diff2, mut ref2, mut max_abs, mut worst_index, mut non_finite) = (0f64, 0f64, 0f64, 0usize, 0usize);
    for (i, (&a, &b)) in ours.iter().zip(reference).enumerate() {
        if !a.is_finite() {
            non_finite += 1;
        }
        let d = (a as f64 - b as f64).abs();
        diff2 += d * d;
        ref2 += (b as f64) * (b as f64);
        if d > max_abs || d.is_nan() {
            max_abs = d;
            worst_index = i;
        }
    }
    let rel_l2 = if non_finite > 0 { f64::INFINITY } else { diff2.sqrt() / ref2.sqrt().max(f64::MIN_POSITIVE) };
    Comparison {
        rel_l2,
        max_abs,
        worst_index,
        worst: (ours.get(worst_index).copied().unwrap_or(0.0), reference.get(worst_index).copied().unwrap_or(0.0)),
        first: ours.iter().zip(reference).take(4).map(|(&a, &b)| (a, b)).collect(),
        non_finite,
        len: ours.len(),
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rel L2 {:.3e}, max abs {:.3e} at [{}] (ours {}, ref {}), {} non-finite of {}, first {:?}",
            self.rel_l2,
            self.max_abs,
            self.worst_index,
            self.worst.0,
            self.worst.1,
            self.non_finite,
            self.len,
            self.first
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_finds_worst_and_flags_nan() {
        let c = compare(&[1.0, 2.0, 3.5], &[1.0, 2.0, 3.0]);
        assert_eq!(c.worst_index, 2);
        assert!((c.rel_l2 - 0.5 / 14f64.sqrt()).abs() < 1e-12);
        let c = compare(&[1.0, f32::NAN], &[1.0, 2.0]);
        assert_eq!(c.non_finite, 1);
        assert!(c.rel_l2.is_infinite());
    }
}
