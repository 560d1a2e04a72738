//! Flow-matching samplers (MODEL.md §5): the sigma schedules, DPM-Solver++ (second-order
//! multistep, as diffusers 0.42.1 `DPMSolverMultistepScheduler` with flow sigmas computes it),
//! flow-match Euler (`FlowMatchEulerDiscreteScheduler`), and classifier-free guidance. The
//! coefficients come from the sigmas on the host; the updates run on the backend over f32 latent
//! tables (backend ops `lincomb_tables`, `guided_velocity`), so a denoising step moves nothing
//! between host and device. Tested against diffusers on the CPU backend.

use crate::backend::{lincomb_tables, Backend};
use crate::error::{Error, Result};

mod dpm_solver;
mod schedule;

pub use dpm_solver::DpmSolverPP;
pub use schedule::{explicit_schedule, flow_dpm_schedule, flow_euler_schedule, Schedule};

/// The stepper of one denoising loop: Base's multistep DPM-Solver++, or flow Euler over a schedule
/// (Refine's tail of a shifted schedule, or explicit sigmas).
pub enum Sampler<B: Backend> {
    DpmSolver(DpmSolverPP<B>),
    Euler { schedule: Schedule, step: usize },
}

impl<B: Backend> Sampler<B> {
    pub fn euler(schedule: Schedule) -> Self {
        Sampler::Euler { schedule, step: 0 }
    }

    /// The model's timestep at each step.
    pub fn timesteps(&self) -> &[f32] {
        match self {
            Sampler::DpmSolver(s) => &s.schedule().timesteps,
            Sampler::Euler { schedule, .. } => &schedule.timesteps,
        }
    }

    /// Advances x (in place) by one step given the velocity at the current sigma.
    pub fn step(&mut self, be: &B, x: &mut B::Table, v: &B::Table) -> Result<()> {
        match self {
            Sampler::DpmSolver(s) => s.step(be, x, v),
            Sampler::Euler { schedule, step } => {
                if *step >= schedule.timesteps.len() {
                    return Err(Error::InputShape {
                        name: "sampler step".into(),
                        expected: format!("step < {}", schedule.timesteps.len()),
                        got: format!("step {step}"),
                    });
                }
                // x ← x + (σ_next − σ)·v
                let dt = schedule.sigmas[*step + 1] - schedule.sigmas[*step];
                lincomb_tables(be, x, 1.0, &[(dt, v)])?;
                *step += 1;
                Ok(())
            }
        }
    }
}
