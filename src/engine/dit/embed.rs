//! Host-side tables: the timestep sinusoid and the 3D RoPE angles (MODEL.md §2.2 step 3, §2.5).
//! Both are tiny next to the activations and are computed exactly as diffusers does, including
//! its precision choices, because their rounding shows at the 1e-5 level.

/// Sinusoidal timestep features, width 256, `[cos(t·f) | sin(t·f)]` with
/// f_i = exp(−ln(10000)·i/128) (diffusers `get_timestep_embedding`, flip_sin_to_cos=True,
/// downscale_freq_shift=0). Everything in f32 in the order torch evaluates it: the argument
/// t·f_i of a timestep near 1000 carries the f32 rounding the checkpoint was trained with.
pub fn timestep_sinusoid(timesteps: &[f32]) -> Vec<f32> {
    const HALF: usize = 128;
    let neg_ln_period = -(10000f64.ln()) as f32;
    let freqs: Vec<f32> = (0..HALF).map(|i| ((neg_ln_period * i as f32) / HALF as f32).exp()).collect();
    let mut out = Vec::with_capacity(timesteps.len() * 2 * HALF);
    for &t in timesteps {
        out.extend(freqs.iter().map(|&f| (t * f).cos()));
        out.extend(freqs.iter().map(|&f| (t * f).sin()));
    }
    out
}

/// RoPE angle tables (cos, sin), each (N, head_dim/2) for a token grid (T', H', W') in (t, h, w)
/// order. The head is split [t | h | w] with h_dim = w_dim = 2·(head_dim/6), t_dim the rest;
/// pair k of an axis of width `dim` turns by pos·10000^(−2k/dim). Angles in f64, stored as f32,
/// as diffusers `WanRotaryPosEmbed` builds its buffers.
pub fn rope_tables(head_dim: usize, grid: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    let hw_dim = 2 * (head_dim / 6);
    let axis_dims = [head_dim - 2 * hw_dim, hw_dim, hw_dim];
    // A token's row is [t pairs | h pairs | w pairs], each part depending on one axis position
    // only: every axis's (position, pair) angles are computed once and the rows assembled from
    // them (the per-token f64 cos/sin took 12 ms at 720p and 48 at 480p on the host).
    let axis_tables: Vec<(Vec<f32>, Vec<f32>)> = axis_dims
        .iter()
        .zip(grid)
        .map(|(&dim, len)| {
            let freqs: Vec<f64> = (0..dim / 2).map(|k| 1.0 / 10000f64.powf((2 * k) as f64 / dim as f64)).collect();
            let angles = (0..len).flat_map(|pos| freqs.iter().map(move |f| pos as f64 * f));
            (angles.clone().map(|a| a.cos() as f32).collect(), angles.map(|a| a.sin() as f32).collect())
        })
        .collect();
    let [gt, gh, gw] = grid;
    let row = head_dim / 2;
    let (mut cos, mut sin) = (Vec::with_capacity(gt * gh * gw * row), Vec::with_capacity(gt * gh * gw * row));
    for t in 0..gt {
        for h in 0..gh {
            for w in 0..gw {
                for (axis, pos) in [t, h, w].into_iter().enumerate() {
                    let width = axis_dims[axis] / 2;
                    let (c, s) = &axis_tables[axis];
                    cos.extend_from_slice(&c[pos * width..][..width]);
                    sin.extend_from_slice(&s[pos * width..][..width]);
                }
            }
        }
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoid_starts_with_cos() {
        let e = timestep_sinusoid(&[0.0, 1.0]);
        assert_eq!(e.len(), 512);
        assert!(e[..128].iter().all(|&v| v == 1.0), "cos(0) half");
        assert!(e[128..256].iter().all(|&v| v == 0.0), "sin(0) half");
        assert!((e[256] - 1f32.cos()).abs() < 1e-7 && (e[384] - 1f32.sin()).abs() < 1e-7);
    }

    #[test]
    fn rope_splits_head_t_h_w() {
        // head_dim 112: t 40 (20 pairs), h 36 (18), w 36 (18)
        let (cos, sin) = rope_tables(112, [2, 3, 4]);
        assert_eq!(cos.len(), 24 * 56);
        // token (t=1, h=0, w=0): only the 20 t-pairs turn
        let row = &sin[12 * 56..13 * 56];
        assert!(row[..20].iter().any(|&s| s != 0.0));
        assert!(row[20..].iter().all(|&s| s == 0.0));
        // token (0, 0, 1): only the last 18 pairs turn; pair 38's frequency is 1
        let row = &sin[56..112];
        assert!(row[..38].iter().all(|&s| s == 0.0));
        assert_eq!(row[38], 1f64.sin() as f32);
    }

    /// The tables as the definition reads, a token and a pair at a time: the assembled rows
    /// must hold exactly these values.
    fn rope_per_token(head_dim: usize, [gt, gh, gw]: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
        let hw_dim = 2 * (head_dim / 6);
        let axis_dims = [head_dim - 2 * hw_dim, hw_dim, hw_dim];
        let pairs: Vec<(usize, f64)> = (0..3)
            .flat_map(|axis| {
                let dim = axis_dims[axis];
                (0..dim / 2).map(move |k| (axis, 1.0 / 10000f64.powf((2 * k) as f64 / dim as f64)))
            })
            .collect();
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for t in 0..gt {
            for h in 0..gh {
                for w in 0..gw {
                    for &(axis, freq) in &pairs {
                        let angle = [t, h, w][axis] as f64 * freq;
                        cos.push(angle.cos() as f32);
                        sin.push(angle.sin() as f32);
                    }
                }
            }
        }
        (cos, sin)
    }

    #[test]
    fn rope_rows_are_the_per_token_definition() {
        for (head_dim, grid) in [(112, [3, 5, 7]), (64, [2, 4, 3]), (112, [11, 22, 40])] {
            assert_eq!(
                rope_tables(head_dim, grid),
                rope_per_token(head_dim, grid),
                "head_dim {head_dim}, grid {grid:?}"
            );
        }
    }
}
