//! DPM-Solver++ (2M, midpoint) for flow matching (MODEL.md §5.2; diffusers 0.42.1
//! `DPMSolverMultistepScheduler` with `use_flow_sigmas`, `prediction_type="flow_prediction"`,
//! `final_sigmas_type="zero"`). With α = 1 − σ and λ = ln α − ln σ, h = λ_{i+1} − λ_i:
//!   x0 = x − σ_i·v
//!   first order (step 0, and the last step, whose σ_{i+1} = 0 makes it x0 exactly):
//!     x ← (σ_{i+1}/σ_i)·x − α_{i+1}(e^{−h} − 1)·x0
//!   second order otherwise, with the previous x0 m1 and r = (λ_i − λ_{i−1})/h:
//!     x ← (σ_{i+1}/σ_i)·x − α_{i+1}(e^{−h} − 1)·x0 − ½·α_{i+1}(e^{−h} − 1)·(x0 − m1)/r
//! Coefficients in f32 as diffusers computes them (its sigmas are an f32 tensor).

use super::Schedule;
use crate::backend::{lincomb_tables, Backend, Buffer};
use crate::error::{Error, Result};

pub struct DpmSolverPP<B: Backend> {
    schedule: Schedule,
    step: usize,
    prev_x0: Option<B::Table>,
    /// The x0 table of two steps ago, reused for the next x0 (no allocation per step).
    spare: Option<B::Table>,
}

impl<B: Backend> DpmSolverPP<B> {
    pub fn new(schedule: Schedule) -> Self {
        DpmSolverPP { schedule, step: 0, prev_x0: None, spare: None }
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Advances x (in place) by one step given the model's velocity v at the current sigma.
    pub fn step(&mut self, be: &B, x: &mut B::Table, v: &B::Table) -> Result<()> {
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
        let mut x0 = match self.spare.take() {
            Some(t) if t.len() == x.len() => t,
            _ => be.alloc_table(x.len())?,
        };
        lincomb_tables(be, &mut x0, 0.0, &[(1.0, &*x), (-sigma, v)])?;
        if sigma_next == 0.0 {
            lincomb_tables(be, x, 0.0, &[(1.0, &x0)])?; // λ_{i+1} = ∞: the update is x0 exactly
        } else {
            let lambda = |s: f32| (1.0 - s).ln() - s.ln();
            let h = lambda(sigma_next) - lambda(sigma);
            let ratio = sigma_next / sigma;
            let coeff = (1.0 - sigma_next) * ((-h).exp() - 1.0);
            match (&self.prev_x0, i) {
                (Some(m1), i) if i > 0 => {
                    // − ½·coeff·d1 with d1 = (x0 − m1)/r, as two terms
                    let r = (lambda(sigma) - lambda(self.schedule.sigmas[i - 1])) / h;
                    let half_over_r = 0.5 * coeff * (1.0 / r);
                    lincomb_tables(be, x, ratio, &[(-coeff, &x0), (-half_over_r, &x0), (half_over_r, m1)])?;
                }
                _ => lincomb_tables(be, x, ratio, &[(-coeff, &x0)])?,
            }
        }
        self.spare = self.prev_x0.replace(x0);
        self.step += 1;
        Ok(())
    }
}
