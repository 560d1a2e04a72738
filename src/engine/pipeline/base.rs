//! Base, the denoising loops of text-to-video and image-to-video (MODEL.md §5, §6, §9; diffusers
//! 0.42.1 `SanaVideoPipeline` / `SanaImageToVideoPipeline.__call__` from their initial latents to
//! `output_type="latent"`): the transformer on [x, x] with the captions [negative, positive],
//! classifier-free guidance, and a flow DPM-Solver++ step in f32. The latent stays on the backend
//! in f32 between steps; decoding is the VAE's job.

use super::LatentVideo;
use crate::backend::{copy_table_range, guided_velocity, table_to_tensor, Backend, Tensor};
use crate::engine::dit::{DitInput, SanaVideoTransformer, Timesteps};
use crate::engine::progress::Progress;
use crate::engine::sampler::{flow_dpm_schedule, DpmSolverPP, Sampler};
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

/// Text to video: denoises `noise` under the positive and negative caption embeddings.
pub fn denoise_text_to_video<B: Backend>(
    be: &B,
    transformer: &SanaVideoTransformer<B>,
    captions: Captions<B>,
    noise: &LatentVideo,
    sampling: &BaseSampling,
    progress: &dyn Progress,
) -> Result<LatentVideo> {
    let sampler = Sampler::DpmSolver(DpmSolverPP::new(flow_dpm_schedule(sampling.steps, sampling.flow_shift)?));
    denoise(be, transformer, captions, noise, None, sampling.guidance, sampler, progress)
}

/// Image to video (MODEL.md §6; diffusers `SanaImageToVideoPipeline`): latent frame 0 is the
/// normalised image latent (B, C, 1, H, W) and stays fixed; its tokens get timestep 0, the
/// others t (per-token timesteps); the sampler steps frames 1.. only.
pub fn denoise_image_to_video<B: Backend>(
    be: &B,
    transformer: &SanaVideoTransformer<B>,
    captions: Captions<B>,
    noise: &LatentVideo,
    image_latent: &[f32],
    sampling: &BaseSampling,
    progress: &dyn Progress,
) -> Result<LatentVideo> {
    let sampler = Sampler::DpmSolver(DpmSolverPP::new(flow_dpm_schedule(sampling.steps, sampling.flow_shift)?));
    denoise(be, transformer, captions, noise, Some(image_latent), sampling.guidance, sampler, progress)
}

/// The caption embeddings of one run: classifier-free guidance uses both.
#[derive(Clone, Copy)]
pub struct Captions<'a, B: Backend> {
    pub positive: &'a PromptEmbeddings<B>,
    pub negative: &'a PromptEmbeddings<B>,
}

/// The denoising loop shared by Base and Refine: from `noise` (the starting latents), one
/// transformer pass per timestep of `sampler` on [x, x] with captions [negative, positive] (x alone
/// when guidance is 1), classifier-free guidance, then the sampler's step; with `first_frame`,
/// latent frame 0 is pinned (image-to-video).
#[allow(clippy::too_many_arguments)] // the loop's natural inputs
pub(super) fn denoise<B: Backend>(
    be: &B,
    transformer: &SanaVideoTransformer<B>,
    captions: Captions<B>,
    noise: &LatentVideo,
    first_frame: Option<&[f32]>,
    guidance: f32,
    mut solver: Sampler<B>,
    progress: &dyn Progress,
) -> Result<LatentVideo> {
    let Captions { positive, negative } = captions;
    let latent_shape = noise.shape;
    let [b, c, t, h, w] = latent_shape;
    if noise.data.len() != latent_shape.iter().product::<usize>() || positive.embeds.shape()[0] != b {
        return Err(Error::InputShape {
            name: "initial latents".into(),
            expected: format!("{latent_shape:?} for {} prompt(s)", positive.embeds.shape()[0]),
            got: format!("{} values", noise.data.len()),
        });
    }
    let mut x = noise.data.clone();
    if let Some(image) = first_frame {
        if image.len() != b * c * h * w || t < 2 {
            return Err(Error::InputShape {
                name: "image latent".into(),
                expected: format!("({b}, {c}, 1, {h}, {w}) and at least 2 latent frames"),
                got: format!("{} values, {t} latent frames", image.len()),
            });
        }
        for bc in 0..b * c {
            x[bc * t * h * w..][..h * w].copy_from_slice(&image[bc * h * w..][..h * w]);
        }
    }
    let guided = guidance != 1.0;
    let copies = if guided { 2 } else { 1 };
    // captions [negative; positive] and their masks, uploaded once
    let (caption, mask) = if guided {
        let (neg, pos) = (negative.embeds.to_host(be)?, positive.embeds.to_host(be)?);
        let mut shape = positive.embeds.shape().to_vec();
        shape[0] *= 2;
        (Tensor::from_vec(be, &shape, [neg, pos].concat())?, [negative.mask.clone(), positive.mask.clone()].concat())
    } else {
        (Tensor::from_vec(be, positive.embeds.shape(), positive.embeds.to_host(be)?)?, positive.mask.clone())
    };
    let [pt, ph, pw] = transformer.config.patch_size;
    let frame_tokens = (h / ph) * (w / pw);
    let tokens = (t / pt) * frame_tokens;
    let mut model_shape = latent_shape;
    model_shape[0] *= copies;
    // the latent, the velocity and the solver's state stay on the backend in f32 between steps:
    // a step moves nothing to or from the host (MODEL.md §5)
    let mut x_dev = be.upload_table(x)?;
    let image_dev = first_frame.map(|image| be.upload_table(image.to_vec())).transpose()?;
    let mut velocity = be.alloc_table(b * c * t * h * w)?;
    let mut latent = Tensor::empty(be, &model_shape)?;
    let steps = solver.timesteps().len();
    // one step queued ahead of the device: the host prepares step i + 1 while step i runs, so
    // the device never waits between transformer passes, and progress and cancellation lag it
    // by one step only
    let mut running: Option<B::Fence> = None;
    for i in 0..steps {
        progress.step(i, steps, &format!("denoising {}/{steps}", i + 1))?;
        let step_t = solver.timesteps()[i];
        table_to_tensor(be, &mut latent, &x_dev)?;
        let timesteps = if image_dev.is_some() {
            // t·(1 − mask), the mask 1 on latent frame 0's tokens
            let per_token: Vec<f32> =
                (0..model_shape[0] * tokens).map(|k| if k % tokens < frame_tokens { 0.0 } else { step_t }).collect();
            Timesteps::PerToken(per_token)
        } else {
            Timesteps::PerSample(vec![step_t; model_shape[0]])
        };
        let out = transformer.forward(
            be,
            &DitInput { latent: &latent, caption: &caption, timesteps: &timesteps, caption_mask: Some(&mask) },
        )?;
        guided_velocity(be, &mut velocity, &out, guidance)?;
        solver.step(be, &mut x_dev, &velocity)?;
        if let Some(image) = &image_dev {
            // frame 0 pinned: stepping every frame and restoring frame 0 leaves frames 1.. as
            // stepping them alone would (the updates are elementwise)
            for bc in 0..b * c {
                copy_table_range(be, &mut x_dev, bc * t * h * w, image, bc * h * w, h * w)?;
            }
        }
        if let Some(previous) = running.replace(be.fence()?) {
            be.wait(&previous)?;
        }
    }
    let x = be.download_table(&x_dev)?;
    progress.update(1.0, "denoised");
    Ok(LatentVideo { shape: latent_shape, data: x })
}
