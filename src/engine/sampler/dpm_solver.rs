//! DPM-Solver++ (2M, midpoint) for flow matching (MODEL.md §5.2; diffusers 0.42.1
//! `DPMSolverMultistepScheduler` with `use_flow_sigmas`, `prediction_type="flow_prediction"`,
//! `final_sigmas_type="zero"`). With α = 1 − σ and λ = ln α − ln σ, h = λ_{i+1} − λ_i:
//!   x0 = x − σ_i·v
//!   first order (step 0, and the last step, whose σ_{i+1} = 0 makes it x0 exactly):
//!     x ← (σ_{i+1}/σ_i)·x − α_{i+1}(e^{−h} − 1)·x0
//!   second order otherwise, with the previous x0 m1 and r = (λ_i − λ_{i−1})/h:
//!     x ← (σ_{i+1}/σ_i)·x − α_{i+1}(e^{−h} − 1)·x0 − ½·α_{i+1}(e^{−h} − 1)·(x0 − m1)/r
//! Coefficients in f32 as diffusers computes them (its sigmas are an f32 tensor).

use rayon::prelude::*;

use super::{Schedule, MIN_VALUES_PER_TASK};
use crate::error::{Error, Result};

pub struct DpmSolverPP {
    schedule: Schedule,
    step: usize,
    prev_x0: Option<Vec<f32>>,
    /// The x0 buffer of two steps ago, reused for the next x0 (a 720p latent is 1.2 M values: a
    /// fresh buffer per step cost page faults each time).
    spare: Vec<f32>,
}

impl DpmSolverPP {
    pub fn new(schedule: Schedule) -> Self {
        DpmSolverPP { schedule, step: 0, prev_x0: None, spare: Vec::new() }
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Advances x (in place) by one step given the model's velocity v at the current sigma.
    pub fn step(&mut self, x: &mut [f32], v: &[f32]) -> Result<()> {
        let i = self.step;
        let n = self.schedule.timesteps.len();
        if i >= n || v.len() != x.len() {
            return Err(Error::InputShape {
                name: "sampler step".into(),
                expected: format!("step < {n} with a velocity the latent's size {}", x.len()),
                got: format!("step {i}, velocity of {}", v.len()),
            });
        }
        let (sigma, sigma_next) = (self.schedule.sigmas[i], self.schedule.sigmas[i + 1]);
        let mut x0 = std::mem::take(&mut self.spare);
        x0.resize(x.len(), 0.0);
        x0.par_iter_mut().with_min_len(MIN_VALUES_PER_TASK).zip(x.par_iter().zip(v)).for_each(|(x0, (&x, &v))| {
            *x0 = x - sigma * v;
        });
        let elementwise = x.par_iter_mut().with_min_len(MIN_VALUES_PER_TASK).zip(&x0);
        if sigma_next == 0.0 {
            elementwise.for_each(|(x, &x0)| *x = x0); // λ_{i+1} = ∞: the update is x0 exactly
        } else {
            let lambda = |s: f32| (1.0 - s).ln() - s.ln();
            let h = lambda(sigma_next) - lambda(sigma);
            let ratio = sigma_next / sigma;
            let coeff = (1.0 - sigma_next) * ((-h).exp() - 1.0);
            match (&self.prev_x0, i) {
                (Some(m1), i) if i > 0 => {
                    let r = (lambda(sigma) - lambda(self.schedule.sigmas[i - 1])) / h;
                    let half = 0.5 * coeff;
                    elementwise.zip(m1).for_each(|((x, &d0), &m1)| {
                        let d1 = (1.0 / r) * (d0 - m1);
                        *x = ratio * *x - coeff * d0 - half * d1;
                    });
                }
                _ => elementwise.for_each(|(x, &d0)| *x = ratio * *x - coeff * d0),
            }
        }
        self.spare = self.prev_x0.replace(x0).unwrap_or_default();
        self.step += 1;
        Ok(())
    }
}
