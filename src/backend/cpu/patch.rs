//! Patch embedding rearrangement and unpatchify (MODEL.md §2.2 steps 2 and 7).

use rayon::prelude::*;

use crate::backend::PatchDims;

/// out[b, (ti, hi, wi), (c, it, ih, iw)] ← x[b, c, ti·pt + it, hi·ph + ih, wi·pw + iw].
pub fn patchify(out: &mut [f32], x: &[f32], d: PatchDims) {
    let [pt, ph, pw] = d.patch;
    let [gt, gh, gw] = d.grid();
    let f = d.features();
    out.par_chunks_mut(f).enumerate().for_each(|(token, o)| {
        let (b, rest) = (token / (gt * gh * gw), token % (gt * gh * gw));
        let (ti, hi, wi) = (rest / (gh * gw), (rest / gw) % gh, rest % gw);
        let mut i = 0;
        for c in 0..d.c {
            for it in 0..pt {
                for ih in 0..ph {
                    for iw in 0..pw {
                        let (t, h, w) = (ti * pt + it, hi * ph + ih, wi * pw + iw);
                        o[i] = x[(((b * d.c + c) * d.t + t) * d.h + h) * d.w + w];
                        i += 1;
                    }
                }
            }
        }
    });
}

/// out[b, c, ti·pt + it, hi·ph + ih, wi·pw + iw] ← x[b, (ti, hi, wi), ((it·ph + ih)·pw + iw)·C + c].
pub fn unpatchify(out: &mut [f32], x: &[f32], d: PatchDims) {
    let [pt, ph, pw] = d.patch;
    let [gt, gh, gw] = d.grid();
    let f = d.features();
    // One output row (b, c, t, h) of W values at a time.
    out.par_chunks_mut(d.w).enumerate().for_each(|(row, o)| {
        let h = row % d.h;
        let t = (row / d.h) % d.t;
        let c = (row / (d.h * d.t)) % d.c;
        let b = row / (d.h * d.t * d.c);
        let (ti, it, hi, ih) = (t / pt, t % pt, h / ph, h % ph);
        for (w, o) in o.iter_mut().enumerate() {
            let (wi, iw) = (w / pw, w % pw);
            let token = ((b * gt + ti) * gh + hi) * gw + wi;
            *o = x[token * f + ((it * ph + ih) * pw + iw) * d.c + c];
        }
    });
}
