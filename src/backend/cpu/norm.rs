//! Norms and the adaLN modulation algebra (MODEL.md §2.3, §2.8).

use rayon::prelude::*;

use crate::backend::{Modulation, TokenDims};

/// Host view of a [`Modulation`]: vector k of token (b, n) is
/// `table[k] + emb[b·M + (per_token ? n : 0)][k mod E]`.
pub struct ModView<'a> {
    table: &'a [f32],
    emb: &'a [f32],
    emb_chunks: usize,
    per_token: bool,
    d: usize,
    n: usize,
}

impl<'a> ModView<'a> {
    pub fn new(m: &'a Modulation<super::Cpu>, dims: TokenDims) -> Self {
        ModView {
            table: &m.table.buf,
            emb: &m.emb.buf,
            emb_chunks: m.emb_chunks,
            per_token: m.per_token,
            d: dims.d,
            n: dims.n,
        }
    }

    /// (table row k, emb row k) for token `row` = b·N + n.
    fn vectors(&self, k: usize, row: usize) -> (&'a [f32], &'a [f32]) {
        let (b, n) = (row / self.n, row % self.n);
        let emb_row = if self.per_token { b * self.n + n } else { b };
        let e = &self.emb[(emb_row * self.emb_chunks + k % self.emb_chunks) * self.d..][..self.d];
        (&self.table[k * self.d..][..self.d], e)
    }
}

/// out ← act(x · rsqrt(mean(x²) + eps) · (offset + w)) over rows of width `dim` (sum of squares
/// in f64).
#[allow(clippy::too_many_arguments)] // mirrors Backend::rms_norm
pub fn rms_norm(
    out: &mut [f32],
    x: &[f32],
    w: &[f32],
    rows: usize,
    dim: usize,
    eps: f32,
    offset: f32,
    act: crate::backend::Activation,
) {
    debug_assert_eq!(out.len(), rows * dim);
    out.par_chunks_mut(dim).zip(x.par_chunks(dim)).for_each(|(o, x)| {
        let r = inv_rms(x, eps);
        o.iter_mut().zip(x).zip(w).for_each(|((o, &x), &w)| *o = super::linear::apply(act, x * r * (offset + w)));
    });
}

/// x ← x + y · rsqrt(mean(y²) + eps) · (offset + w) over rows of width `dim` (sum of squares in
/// f64): a post-norm added into the residual. The same arithmetic, in the same order, as
/// `rms_norm` into a scratch row followed by `decoder::add`, so fusing changes no bit.
pub fn normed_residual_f32(x: &mut [f32], y: &[f32], w: &[f32], dim: usize, eps: f32, offset: f32) {
    debug_assert_eq!(x.len(), y.len());
    x.par_chunks_mut(dim).zip(y.par_chunks(dim)).for_each(|(x, y)| {
        let r = inv_rms(y, eps);
        x.iter_mut().zip(y).zip(w).for_each(|((x, &y), &w)| *x += y * r * (offset + w));
    });
}

/// 1 / sqrt(mean(x²) + eps), accumulated in f64.
pub fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let ms = x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len() as f64;
    (1.0 / (ms + eps as f64).sqrt()) as f32
}

/// out ← LayerNorm(x; no affine) · (1 + (table[scale] + emb[scale])) + (table[shift] + emb[shift]).
/// x, out (B, N, D); mean and biased variance in f64.
pub fn ada_layer_norm(out: &mut [f32], x: &[f32], m: &ModView, shift: usize, scale: usize, dims: TokenDims, eps: f32) {
    let d = dims.d;
    out.par_chunks_mut(d).zip(x.par_chunks(d)).enumerate().for_each(|(row, (o, x))| {
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let inv_std = 1.0 / (var + eps as f64).sqrt();
        let (sh_t, sh_e) = m.vectors(shift, row);
        let (sc_t, sc_e) = m.vectors(scale, row);
        for c in 0..d {
            let normed = ((x[c] as f64 - mean) * inv_std) as f32;
            o[c] = normed * (1.0 + (sc_t[c] + sc_e[c])) + (sh_t[c] + sh_e[c]);
        }
    });
}

/// x ← x + (table[gate] + emb[gate]) · y, x and y (B, N, D).
pub fn gated_residual(x: &mut [f32], y: &[f32], m: &ModView, gate: usize, dims: TokenDims) {
    let d = dims.d;
    x.par_chunks_mut(d).zip(y.par_chunks(d)).enumerate().for_each(|(row, (x, y))| {
        let (g_t, g_e) = m.vectors(gate, row);
        for c in 0..d {
            x[c] += (g_t[c] + g_e[c]) * y[c];
        }
    });
}

/// GroupNorm (MODEL.md §8.3; PyTorch `GroupNorm(groups, C)` on (1, C, T, H, W)) over channels-last
/// rows x (positions, C): group g holds channels g·C/G..(g+1)·C/G; its mean μ and biased variance
/// σ² span every position and those channels (accumulated in f64), and
/// out[p, c] = act((x[p, c] − μ_g)/√(σ²_g + eps)·γ[c] + β[c]).
#[allow(clippy::too_many_arguments)] // mirrors Backend::group_norm
pub fn group_norm(
    out: &mut [f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    channels: usize,
    groups: usize,
    eps: f32,
    act: crate::backend::Activation,
) {
    let per = channels / groups;
    // (Σx, Σx²) per group, over rows in parallel
    let sums = x
        .par_chunks(channels)
        .fold(
            || vec![(0.0f64, 0.0f64); groups],
            |mut acc, row| {
                for (g, a) in acc.iter_mut().enumerate() {
                    for &v in &row[g * per..(g + 1) * per] {
                        a.0 += v as f64;
                        a.1 += (v as f64) * (v as f64);
                    }
                }
                acc
            },
        )
        .reduce(|| vec![(0.0, 0.0); groups], |a, b| a.iter().zip(&b).map(|(p, q)| (p.0 + q.0, p.1 + q.1)).collect());
    let count = (x.len() / channels * per) as f64;
    let stats: Vec<(f32, f32)> = sums
        .iter()
        .map(|&(s, ss)| {
            let mean = s / count;
            let var = (ss / count - mean * mean).max(0.0);
            (mean as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
        })
        .collect();
    out.par_chunks_mut(channels).zip(x.par_chunks(channels)).for_each(|(o, row)| {
        for (c, (o, &v)) in o.iter_mut().zip(row).enumerate() {
            let (mean, inv) = stats[c / per];
            *o = super::linear::apply(act, (v - mean) * inv * gamma[c] + beta[c]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Activation;
    use crate::engine::weights::splitmix64;
    use crate::testing::{compare, tolerance};

    fn uniform(n: usize, seed: u64, centre: f32) -> Vec<f32> {
        let mut state = seed;
        (0..n).map(|_| centre + ((splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)).collect()
    }

    /// The textbook formula, two passes per group in f64, one element at a time.
    fn naive(x: &[f32], gamma: &[f32], beta: &[f32], c: usize, groups: usize, eps: f32, act: Activation) -> Vec<f32> {
        let (per, rows) = (c / groups, x.len() / c);
        let mut out = vec![0.0; x.len()];
        for g in 0..groups {
            let members = || (0..rows).flat_map(move |r| (g * per..(g + 1) * per).map(move |ch| r * c + ch));
            let n = (rows * per) as f64;
            let mean = members().map(|i| x[i] as f64).sum::<f64>() / n;
            let var = members().map(|i| (x[i] as f64 - mean).powi(2)).sum::<f64>() / n;
            for i in members() {
                let ch = i % c;
                let v = (x[i] as f64 - mean) / (var + eps as f64).sqrt() * gamma[ch] as f64 + beta[ch] as f64;
                out[i] = super::super::linear::apply(act, v as f32);
            }
        }
        out
    }

    /// Awkward sizes (odd position counts, 1, 3 and 6 channels per group, a mean far from 0 so
    /// that E[x²] − μ² cancels), with and without the fused SiLU.
    #[test]
    fn group_norm_matches_the_naive_formula() {
        for (case, &(rows, c, groups, centre, act)) in [
            (37, 12, 4, 0.0, Activation::Identity),
            (101, 30, 5, 3.0, Activation::Silu),
            (7, 32, 32, -1.5, Activation::Silu),
            (1, 9, 3, 0.5, Activation::Identity),
        ]
        .iter()
        .enumerate()
        {
            let seed = 0x6e6f_726d + case as u64;
            let x = uniform(rows * c, seed, centre);
            let gamma: Vec<f32> = uniform(c, seed + 100, 1.0);
            let beta = uniform(c, seed + 200, 0.0);
            let mut out = vec![0.0; rows * c];
            group_norm(&mut out, &x, &gamma, &beta, c, groups, 1e-5, act);
            let cmp = compare(&out, &naive(&x, &gamma, &beta, c, groups, 1e-5, act));
            assert!(
                cmp.rel_l2 <= tolerance::TRANSFORMER_F32,
                "group_norm {rows}x{c}/{groups} (centre {centre}, {act:?}): {cmp}"
            );
        }
    }
}
