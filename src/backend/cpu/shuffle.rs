//! Space-to-depth and depth-to-space between channels-last clips, with the group mean and channel
//! tiling of LTX-2's residual paths (MODEL.md §3.2; diffusers `autoencoder_kl_ltx2.py`).
//! Fine clip (T, H, W, C); coarse clip (T/st, H/sh, W/sw, C·st·sh·sw).

use rayon::prelude::*;

use crate::backend::{ShuffleDims, SubpixelOrder};

/// The coarse channel holding fine channel c at sub-position (it, ih, iw):
/// ((c·st + it)·sh + ih)·sw + iw (`Thw`) or ((c·st + it)·sw + iw)·sh + ih (`Twh`).
fn shuffled_channel(d: &ShuffleDims, c: usize, it: usize, ih: usize, iw: usize) -> usize {
    let [st, sh, sw] = d.factors;
    match d.order {
        SubpixelOrder::Thw => ((c * st + it) * sh + ih) * sw + iw,
        SubpixelOrder::Twh => ((c * st + it) * sw + iw) * sh + ih,
    }
}

/// Inverse of `shuffled_channel`: coarse channel q → (c, it, ih, iw).
fn sub_position(d: &ShuffleDims, q: usize) -> (usize, usize, usize, usize) {
    let [st, sh, sw] = d.factors;
    let (s1, s2) = match d.order {
        SubpixelOrder::Thw => (sh, sw),
        SubpixelOrder::Twh => (sw, sh),
    };
    let (i2, r) = (q % s2, q / s2);
    let (i1, r) = (r % s1, r / s1);
    let (it, c) = (r % st, r / st);
    match d.order {
        SubpixelOrder::Thw => (c, it, i1, i2),
        SubpixelOrder::Twh => (c, it, i2, i1),
    }
}

/// out[to, ho, wo, j] ← (1/group) Σ_g x[to·st + it, ho·sh + ih, wo·sw + iw, c] over the shuffled
/// channels q = j·group + g, (c, it, ih, iw) = sub_position(q).
pub fn space_to_depth(out: &mut [f32], x: &[f32], d: ShuffleDims, group: usize) {
    let [_, h, w] = d.fine;
    let [_, ho_n, wo_n] = d.coarse();
    let [st, sh, sw] = d.factors;
    let c_out = d.coarse_channels() / group;
    out.par_chunks_mut(c_out).enumerate().for_each(|(pos, o)| {
        let (to, ho, wo) = (pos / (ho_n * wo_n), (pos / wo_n) % ho_n, pos % wo_n);
        for (j, v) in o.iter_mut().enumerate() {
            let mut sum = 0.0;
            for q in j * group..(j + 1) * group {
                let (c, it, ih, iw) = sub_position(&d, q);
                let (t, hh, ww) = (to * st + it, ho * sh + ih, wo * sw + iw);
                sum += x[((t * h + hh) * w + ww) * d.c + c];
            }
            *v = sum / group as f32;
        }
    });
}

/// out[t, h, w, j] ← x[t/st, h/sh, w/sw, shuffled_channel(j mod C, t mod st, h mod sh, w mod sw)].
pub fn depth_to_space(out: &mut [f32], x: &[f32], d: ShuffleDims, repeat: usize) {
    let [_, h, w] = d.fine;
    let [_, ho_n, wo_n] = d.coarse();
    let [st, sh, sw] = d.factors;
    let cc = d.coarse_channels();
    out.par_chunks_mut(d.c * repeat).enumerate().for_each(|(pos, o)| {
        let (t, hh, ww) = (pos / (h * w), (pos / w) % h, pos % w);
        let coarse = ((t / st) * ho_n + hh / sh) * wo_n + ww / sw;
        for (j, v) in o.iter_mut().enumerate() {
            *v = x[coarse * cc + shuffled_channel(&d, j % d.c, t % st, hh % sh, ww % sw)];
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// depth_to_space undoes space_to_depth in both orders, at awkward factors.
    #[test]
    fn round_trip() {
        for order in [SubpixelOrder::Thw, SubpixelOrder::Twh] {
            let d = ShuffleDims { fine: [4, 6, 9], c: 5, factors: [2, 3, 3], order };
            let x: Vec<f32> = (0..4 * 6 * 9 * 5).map(|i| i as f32).collect();
            let mut coarse = vec![0.0; x.len()];
            space_to_depth(&mut coarse, &x, d, 1);
            assert_ne!(coarse, x);
            let mut back = vec![0.0; x.len()];
            depth_to_space(&mut back, &coarse, d, 1);
            assert_eq!(back, x, "{order:?}");
        }
    }

    /// The two orders differ only in which of h, w varies fastest within a block.
    #[test]
    fn order_puts_w_or_h_fastest() {
        // one 2×2 block of one channel: x[h, w] = 10h + w
        let x = [0.0, 1.0, 10.0, 11.0];
        let mut out = [0.0; 4];
        let thw = ShuffleDims { fine: [1, 2, 2], c: 1, factors: [1, 2, 2], order: SubpixelOrder::Thw };
        space_to_depth(&mut out, &x, thw, 1);
        assert_eq!(out, [0.0, 1.0, 10.0, 11.0]);
        space_to_depth(&mut out, &x, ShuffleDims { order: SubpixelOrder::Twh, ..thw }, 1);
        assert_eq!(out, [0.0, 10.0, 1.0, 11.0]);
        space_to_depth(&mut out[..2], &x, thw, 2);
        assert_eq!(out[..2], [0.5, 10.5]);
    }
}
