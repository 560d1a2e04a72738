//! Base, the denoising loop of text-to-video (MODEL.md §5, §9; diffusers 0.42.1
//! `SanaVideoPipeline.__call__` from its initial latents to `output_type="latent"`): the
//! transformer on [x, x] with the captions [negative, positive], classifier-free guidance, and a
//! flow DPM-Solver++ step in f32. The latent stays on the host between steps (small next to the
//! transformer's activations); decoding is the VAE's job.

use super::LatentVideo;
use crate::backend::{Backend, Tensor};
use crate::engine::dit::{DitInput, SanaVideoTransformer, Timesteps};
use crate::engine::progress::Progress;
use crate::engine::sampler::{classifier_free_guidance, flow_dpm_schedule, DpmSolverPP};
use crate::engine::text::PromptEmbeddings;
use crate::error::{Error, Result};

/// Sampling settings of one Base run.
#[derive(Clone, Debug)]
pub struct BaseSampling {
    pub steps: usize,
    /// Classifier-free guidance scale (1 = no guidance: the negative branch is skipped).
    pub guidance: f32,
    pub flow_shift: f64,
}

impl Default for BaseSampling {
    fn default() -> Self {
        BaseSampling { steps: 50, guidance: 6.0, flow_shift: 8.0 }
    }
}

/// Denoises `noise` under the positive and negative caption embeddings.
pub fn denoise_text_to_video<B: Backend>(
    be: &B,
    transformer: &SanaVideoTransformer<B>,
    positive: &PromptEmbeddings<B>,
    negative: &PromptEmbeddings<B>,
    noise: &LatentVideo,
    sampling: &BaseSampling,
    progress: &dyn Progress,
) -> Result<LatentVideo> {
    let latent_shape = noise.shape;
    let b = latent_shape[0];
    if noise.data.len() != latent_shape.iter().product::<usize>() || positive.embeds.shape()[0] != b {
        return Err(Error::InputShape {
            name: "initial latents".into(),
            expected: format!("{latent_shape:?} for {} prompt(s)", positive.embeds.shape()[0]),
            got: format!("{} values", noise.data.len()),
        });
    }
    let guided = sampling.guidance != 1.0;
    // captions [negative; positive] and their masks, uploaded once
    let (caption, mask) = if guided {
        let (neg, pos) = (negative.embeds.to_host(be)?, positive.embeds.to_host(be)?);
        let mut shape = positive.embeds.shape().to_vec();
        shape[0] *= 2;
        (Tensor::from_vec(be, &shape, [neg, pos].concat())?, [negative.mask.clone(), positive.mask.clone()].concat())
    } else {
        (Tensor::from_vec(be, positive.embeds.shape(), positive.embeds.to_host(be)?)?, positive.mask.clone())
    };
    let mut solver = DpmSolverPP::new(flow_dpm_schedule(sampling.steps, sampling.flow_shift)?);
    let mut x = noise.data.clone();
    let per_sample = x.len();
    let mut model_shape = latent_shape;
    if guided {
        model_shape[0] *= 2;
    }
    let mut velocity = vec![0.0f32; per_sample];
    for i in 0..sampling.steps {
        if progress.cancelled() {
            return Err(Error::Cancelled);
        }
        progress.update(i as f32 / sampling.steps as f32, &format!("denoising {}/{}", i + 1, sampling.steps));
        let t = solver.schedule().timesteps[i];
        let input = if guided { [x.as_slice(), x.as_slice()].concat() } else { x.clone() };
        let latent = Tensor::from_vec(be, &model_shape, input)?;
        let timesteps = Timesteps::PerSample(vec![t; model_shape[0]]);
        let out = transformer
            .forward(
                be,
                &DitInput { latent: &latent, caption: &caption, timesteps: &timesteps, caption_mask: Some(&mask) },
            )?
            .to_host(be)?;
        if guided {
            let (uncond, cond) = out.split_at(per_sample);
            classifier_free_guidance(&mut velocity, uncond, cond, sampling.guidance);
        } else {
            velocity.copy_from_slice(&out);
        }
        solver.step(&mut x, &velocity)?;
    }
    progress.update(1.0, "denoised");
    Ok(LatentVideo { shape: latent_shape, data: x })
}
