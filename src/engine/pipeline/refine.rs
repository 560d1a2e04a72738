//! Refine with the SANA-Video transformer in refine mode (issue 6; MODEL.md §5.3, §8): an
//! img2img pass over latents — Base's output handed over without a decode, or an artist's plate
//! encoded by the VAE. As diffusers' flow-match img2img pipelines do it:
//!   schedule = flow Euler (steps, shift); t_start = ⌊steps − steps·strength⌋
//!   x = σ₀·ε + (1 − σ₀)·z with σ₀ = schedule.σ[t_start]
//!   then Euler steps t_start.. with classifier-free guidance.
//! `strength` is how far back toward noise the clip goes (1 = regenerate from noise, 0 = keep).
//! The ×2 latent upsampler (LTX-2 latents, MODEL.md §8.3) runs before this pass (refine_job,
//! upscale); the LTX-2 distilled refiner comes in a later issue: this module is where the refiner
//! backend gets chosen.

use super::base::{denoise, Captions};
use super::LatentVideo;
use crate::backend::Backend;
use crate::engine::dit::SanaVideoTransformer;
use crate::engine::progress::Progress;
use crate::engine::sampler::{flow_euler_schedule, Sampler, Schedule};
use crate::error::{Error, Result};

/// Sampling settings of one Refine run.
#[derive(Clone, Debug)]
pub struct RefineSampling {
    /// Steps of the full schedule; Refine runs its last ⌈steps·strength⌉ (about).
    pub steps: usize,
    /// In (0, 1]: the fraction of the schedule re-run, i.e. how much noise goes back in.
    pub strength: f64,
    pub guidance: f32,
    pub flow_shift: f64,
}

impl Default for RefineSampling {
    /// 20 steps at strength 0.3 (6 transformer passes, σ₀ ≈ 0.56 with shift 3): enough noise to
    /// redraw texture and fine detail, too little to move composition or motion — what an artist
    /// asks of a detail pass over a clip that is already right. Not tuned on the released weights
    /// (none here): README says so.
    fn default() -> Self {
        RefineSampling { steps: 20, strength: 0.3, guidance: 4.5, flow_shift: 3.0 }
    }
}

/// The part of the flow Euler schedule Refine runs: from step ⌊steps − steps·strength⌋ on.
pub fn refine_schedule(s: &RefineSampling) -> Result<Schedule> {
    if !(s.strength > 0.0 && s.strength <= 1.0) {
        return Err(Error::InputShape {
            name: "strength".into(),
            expected: "a value in (0, 1]".into(),
            got: format!("{}", s.strength),
        });
    }
    let full = flow_euler_schedule(s.steps, s.flow_shift)?;
    // in f64, as diffusers' get_timesteps computes it with Python floats
    let init = (s.steps as f64 * s.strength).min(s.steps as f64);
    let start = (s.steps as f64 - init).max(0.0) as usize;
    if start >= s.steps {
        return Err(Error::InputShape {
            name: "strength".into(),
            expected: format!("at least one of the {} steps to run", s.steps),
            got: format!("strength {} runs none", s.strength),
        });
    }
    Ok(Schedule { sigmas: full.sigmas[start..].to_vec(), timesteps: full.timesteps[start..].to_vec() })
}

/// Re-noises `latents` (transformer-space) with `noise` to σ₀ and denoises them again.
pub fn refine_latents<B: Backend>(
    be: &B,
    transformer: &SanaVideoTransformer<B>,
    captions: Captions<B>,
    latents: &LatentVideo,
    noise: &LatentVideo,
    sampling: &RefineSampling,
    progress: &dyn Progress,
) -> Result<LatentVideo> {
    if noise.shape != latents.shape || noise.data.len() != latents.data.len() {
        return Err(Error::InputShape {
            name: "refine noise".into(),
            expected: format!("the latents' shape {:?}", latents.shape),
            got: format!("{:?}", noise.shape),
        });
    }
    let schedule = refine_schedule(sampling)?;
    let sigma = schedule.sigmas[0];
    // diffusers' scale_noise: σ·noise + (1 − σ)·sample, in f32
    let start: Vec<f32> = latents.data.iter().zip(&noise.data).map(|(&z, &e)| sigma * e + (1.0 - sigma) * z).collect();
    let start = LatentVideo { shape: latents.shape, data: start };
    denoise(be, transformer, captions, &start, None, sampling.guidance, Sampler::euler(schedule), progress)
}
