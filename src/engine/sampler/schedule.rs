//! Sigma schedules (MODEL.md §5.2–5.3). Sigmas descend from ~1 to the terminal 0; the model is
//! given `timesteps` (σ·1000: truncated to integers for DPM-Solver, as diffusers does; float for
//! Euler). Arithmetic mirrors diffusers': f64 then f32 for DPM, f32 for the Euler shift.

use crate::error::{Error, Result};

/// N steps: `sigmas` has N + 1 entries ending with 0, `timesteps` N.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub sigmas: Vec<f32>,
    pub timesteps: Vec<f32>,
}

const TRAIN_STEPS: f64 = 1000.0;

fn check(steps: usize, shift: f64) -> Result<()> {
    // written so that a NaN shift is refused too
    if steps == 0 || shift.is_nan() || shift <= 0.0 {
        return Err(Error::InputShape {
            name: "steps / flow shift".into(),
            expected: "at least one step and a positive shift".into(),
            got: format!("{steps} steps, shift {shift}"),
        });
    }
    Ok(())
}

/// numpy's `linspace(start, stop, n)`: start + i·step, the last point exactly `stop`.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (stop - start) / (n - 1) as f64;
    (0..n).map(|i| if i == n - 1 { stop } else { start + i as f64 * step }).collect()
}

/// The time shift σ ← s·σ / (1 + (s − 1)·σ).
fn shifted(sigma: f64, shift: f64) -> f64 {
    shift * sigma / (1.0 + (shift - 1.0) * sigma)
}

/// DPM-Solver++ with flow sigmas: σ'_k = 1 − linspace(1, 1/1000, N+1), shifted, reversed, the
/// last dropped; terminal 0 appended; timesteps = trunc(σ·1000).
pub fn flow_dpm_schedule(steps: usize, shift: f64) -> Result<Schedule> {
    check(steps, shift)?;
    let alphas = linspace(1.0, 1.0 / TRAIN_STEPS, steps + 1);
    let mut sigmas: Vec<f64> = alphas.iter().rev().map(|a| shifted(1.0 - a, shift)).collect();
    sigmas.pop();
    let timesteps = sigmas.iter().map(|s| (s * TRAIN_STEPS).trunc() as f32).collect();
    let sigmas = sigmas.iter().map(|&s| s as f32).chain(std::iter::once(0.0)).collect();
    Ok(Schedule { sigmas, timesteps })
}

/// Flow-match Euler with shift s: t = linspace(1000, 1000·σ_min, N) with σ_min the shifted 1/1000,
/// σ = t/1000 shifted again (in f32), terminal 0; timesteps = σ·1000 as floats.
pub fn flow_euler_schedule(steps: usize, shift: f64) -> Result<Schedule> {
    check(steps, shift)?;
    let s = shift as f32;
    let shift32 = |x: f32| s * x / (1.0 + (s - 1.0) * x);
    let sigma_min = shift32(1.0f32 / TRAIN_STEPS as f32);
    let ts = linspace(TRAIN_STEPS, (sigma_min * TRAIN_STEPS as f32) as f64, steps);
    let sigmas: Vec<f32> = ts.iter().map(|&t| shift32((t / TRAIN_STEPS) as f32)).collect();
    let timesteps = sigmas.iter().map(|&s| s * TRAIN_STEPS as f32).collect();
    Ok(Schedule { sigmas: sigmas.into_iter().chain(std::iter::once(0.0)).collect(), timesteps })
}

/// Explicit sigmas used as given (the refiner's distilled schedule), terminal 0 appended.
pub fn explicit_schedule(sigmas: &[f32]) -> Result<Schedule> {
    if sigmas.is_empty() || sigmas.windows(2).any(|w| w[1] >= w[0]) || sigmas.iter().any(|&s| !(0.0..=1.0).contains(&s))
    {
        return Err(Error::InputShape {
            name: "sigmas".into(),
            expected: "a non-empty, strictly descending list in [0, 1]".into(),
            got: format!("{sigmas:?}"),
        });
    }
    Ok(Schedule {
        timesteps: sigmas.iter().map(|s| s * TRAIN_STEPS as f32).collect(),
        sigmas: sigmas.iter().copied().chain(std::iter::once(0.0)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpm_matches_the_numbers_in_model_md() {
        let s = flow_dpm_schedule(50, 8.0).unwrap();
        assert_eq!(s.sigmas.len(), 51);
        assert_eq!(s.timesteps[..2], [999.0, 997.0]);
        assert_eq!(s.timesteps[48..], [249.0, 140.0]);
        assert_eq!(s.sigmas[50], 0.0);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(flow_dpm_schedule(0, 8.0).is_err());
        assert!(flow_euler_schedule(10, 0.0).is_err());
        assert!(explicit_schedule(&[0.5, 0.7]).is_err());
        assert_eq!(explicit_schedule(&[0.909375, 0.725, 0.421875]).unwrap().timesteps, [909.375, 725.0, 421.875]);
    }
}
