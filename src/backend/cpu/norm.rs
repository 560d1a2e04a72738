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
