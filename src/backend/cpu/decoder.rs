//! The decoder ops of the Gemma-2 text encoder (MODEL.md §4; transformers `modeling_gemma2.py`):
//! embedding lookup, rotate-half RoPE, causal grouped-query attention with soft-capping and a
//! sliding window, and the elementwise product and sum of the GeGLU MLP and residuals.

use rayon::prelude::*;

use crate::backend::AttnDims;

/// out[r] = table[ids[r]] · scale.
pub fn gather_rows(out: &mut [f32], table: &[f32], ids: &[u32], dim: usize, scale: f32) {
    out.par_chunks_mut(dim).zip(ids.par_iter()).for_each(|(o, &id)| {
        let row = &table[id as usize * dim..][..dim];
        o.iter_mut().zip(row).for_each(|(o, &v)| *o = v * scale);
    });
}

/// Rotate-half RoPE per head: out[c] = x[c]·cos − x[c+h]·sin, out[c+h] = x[c+h]·cos + x[c]·sin,
/// h = hd/2, angles of the token's position (tables (L, hd/2)).
pub fn rope_rotate_half(out: &mut [f32], x: &[f32], cos: &[f32], sin: &[f32], d: AttnDims) {
    let (hd, half, width) = (d.head_dim, d.head_dim / 2, d.heads * d.head_dim);
    out.par_chunks_mut(width).zip(x.par_chunks(width)).enumerate().for_each(|(row, (o, x))| {
        let pos = row % d.n;
        let (c_row, s_row) = (&cos[pos * half..][..half], &sin[pos * half..][..half]);
        for h in 0..d.heads {
            let (xh, oh) = (&x[h * hd..][..hd], &mut o[h * hd..][..hd]);
            for c in 0..half {
                let (a, b) = (xh[c], xh[c + half]);
                oh[c] = a * c_row[c] - b * s_row[c];
                oh[c + half] = b * c_row[c] + a * s_row[c];
            }
        }
    });
}

/// Causal GQA softmax attention; scores ·scale, soft-capped, masked (causal, window, key mask),
/// softmax in f64 over the visible keys. A query that sees no key at all (a padding position
/// further than the sliding window from every real token) gets the mean of all L values of its
/// sample, as transformers' eager attention gives it: every score there is the f32 minimum, so
/// its softmax is uniform over the whole row (MODEL.md §12.5). Released Gemma-2 (window 4096,
/// ≤ 300 + instruction tokens) never meets this; the tiny fixture model does.
#[allow(clippy::too_many_arguments)] // mirrors Backend::causal_attention
pub fn causal_attention(
    out: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: &[f32],
    d: AttnDims,
    kv_heads: usize,
    scale: f32,
    softcap: Option<f32>,
    window: Option<usize>,
) {
    let (n, hd) = (d.n, d.head_dim);
    let (width, kv_width, group) = (d.heads * hd, kv_heads * hd, d.heads / kv_heads);
    out.par_chunks_mut(width).enumerate().for_each(|(row, o)| {
        let (b, i) = (row / n, row % n);
        let first = window.map(|w| (i + 1).saturating_sub(w)).unwrap_or(0);
        let visible: Vec<usize> = (first..=i).filter(|&j| key_mask[b * n + j] != 0.0).collect();
        for h in 0..d.heads {
            let kvh = h / group;
            let value = |j: usize, c: usize| v[(b * n + j) * kv_width + kvh * hd + c] as f64;
            if visible.is_empty() {
                for c in 0..hd {
                    o[h * hd + c] = ((0..n).map(|j| value(j, c)).sum::<f64>() / n as f64) as f32;
                }
                continue;
            }
            let qh = &q[row * width + h * hd..][..hd];
            let scores: Vec<f64> = visible
                .iter()
                .map(|&j| {
                    let kh = &k[(b * n + j) * kv_width + kvh * hd..][..hd];
                    let s = qh.iter().zip(kh).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() * scale as f64;
                    match softcap {
                        Some(cap) => (s / cap as f64).tanh() * cap as f64,
                        None => s,
                    }
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            for c in 0..hd {
                let acc: f64 = visible.iter().zip(&weights).map(|(&j, &w)| w * value(j, c)).sum();
                o[h * hd + c] = (acc / total) as f32;
            }
        }
    });
}

pub fn multiply(out: &mut [f32], a: &[f32], b: &[f32]) {
    out.par_iter_mut().zip(a.par_iter().zip(b.par_iter())).for_each(|(o, (&a, &b))| *o = a * b);
}

pub fn add(x: &mut [f32], y: &[f32]) {
    x.par_iter_mut().zip(y.par_iter()).for_each(|(x, &y)| *x += y);
}
