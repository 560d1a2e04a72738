#!/usr/bin/env python3
"""Reference fixture for the text-to-video denoising loop (MODEL.md §5, §9): a tiny random
SANA-Video pipeline in the diffusers layout (transformer with caption_channels = the tiny
Gemma-2's hidden size, the tiny Gemma-2 and tokenizer of tools/make_text_fixtures.py, a tiny
random Wan VAE for the folder's completeness, the flow DPM-Solver++ scheduler), saved with
`save_pretrained`, and diffusers 0.42.1 `SanaVideoPipeline.__call__` run to latents from a given
initial noise (CFG 6, 4 steps, CHI on, no resolution binning).

Needs tests/fixtures/text/tiny-gemma (run make_text_fixtures.py first). Run from the repository root:
    python3 tools/make_pipeline_fixtures.py
"""

import os
import shutil

import diffusers
import torch
import numpy as np
from diffusers import (AutoencoderKLWan, DPMSolverMultistepScheduler, SanaImageToVideoPipeline, SanaVideoPipeline,
                       SanaVideoTransformer3DModel)
from PIL import Image
from safetensors.torch import save_file
from transformers import Gemma2Model, PreTrainedTokenizerFast

SEED = 20261128
ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pipeline")
TEXT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "text", "tiny-gemma")
COMMAND = "python3 tools/make_pipeline_fixtures.py"
PROMPT = "A Cat Sleeping on a Windowsill motion score: 30."
NEGATIVE = "blurry, jittery"


def main():
    torch.manual_seed(SEED)  # the VAE's default init draws from the global generator
    gen = torch.Generator().manual_seed(SEED)
    folder = os.path.join(ROOT, "tiny-sana-video")
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    text_encoder = Gemma2Model.from_pretrained(os.path.join(TEXT, "text_encoder"), attn_implementation="eager").eval()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(TEXT, "tokenizer", "tokenizer.json"),
                                        bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
                                        padding_side="right")
    transformer = SanaVideoTransformer3DModel(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=12, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24,
        caption_channels=text_encoder.config.hidden_size, mlp_ratio=2.5, attention_bias=False, sample_size=30,
        patch_size=(1, 2, 2), norm_elementwise_affine=False, norm_eps=1e-6, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
    )
    with torch.no_grad():
        for name, p in transformer.named_parameters():
            if p.ndim == 1 and "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1 or "scale_shift_table" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)
    vae = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    scheduler = DPMSolverMultistepScheduler(flow_shift=8.0, use_flow_sigmas=True, prediction_type="flow_prediction")
    pipe = SanaVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer.eval(),
                             scheduler=scheduler)
    pipe.save_pretrained(folder, safe_serialization=True)

    noise = torch.randn((1, 16, 2, 4, 4), generator=gen)  # 5 frames, 32×32 pixels
    with torch.no_grad():
        latents = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, height=32, width=32, frames=5,
                       num_inference_steps=4, guidance_scale=6.0, latents=noise.clone(), output_type="latent",
                       use_resolution_binning=False, return_dict=False)[0]
    with torch.no_grad():
        # the same run to frames: the VAE decode and diffusers' post-processing to [0, 1]
        video = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, height=32, width=32, frames=5,
                     num_inference_steps=4, guidance_scale=6.0, latents=noise.clone(), output_type="pt",
                     use_resolution_binning=False, return_dict=False)[0]
    # (B, F, C, H, W) as diffusers returns it
    save_file({"noise": noise.contiguous(), "latents": latents.float().contiguous(),
               "video": video.float().contiguous()},
              os.path.join(ROOT, "t2v.safetensors"),
              metadata=dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED),
                            prompt=PROMPT, negative_prompt=NEGATIVE, steps="4", guidance="6.0", flow_shift="8.0"))
    print("t2v latents", tuple(latents.shape), float(latents.abs().mean()))

    # image-to-video from the same components: the first latent frame pinned to the image's latent,
    # per-token timesteps, the scheduler on frames 1: only. The image latent is recorded from
    # inside the pipeline (prepare_latents overwrites frame 0 of the latents it is given).
    i2v = SanaImageToVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                                   transformer=transformer.eval(), scheduler=DPMSolverMultistepScheduler.from_config(
                                       scheduler.config))
    recorded = {}
    original = i2v.prepare_latents

    def recording_prepare_latents(*args, **kwargs):
        out = original(*args, **kwargs)
        recorded["image_latent"] = out[:, :, :1].clone()
        return out

    i2v.prepare_latents = recording_prepare_latents
    pixels = (torch.rand((32, 32, 3), generator=gen) * 255).to(torch.uint8).numpy()
    image = Image.fromarray(np.asarray(pixels), mode="RGB")
    noise_i2v = torch.randn((1, 16, 2, 4, 4), generator=gen)
    with torch.no_grad():
        latents = i2v(image=image, prompt=PROMPT, negative_prompt=NEGATIVE, height=32, width=32, frames=5,
                      num_inference_steps=4, guidance_scale=6.0, latents=noise_i2v.clone(), output_type="latent",
                      use_resolution_binning=False, return_dict=False)[0]
    with torch.no_grad():
        video = i2v(image=image, prompt=PROMPT, negative_prompt=NEGATIVE, height=32, width=32, frames=5,
                    num_inference_steps=4, guidance_scale=6.0, latents=noise_i2v.clone(), output_type="pt",
                    use_resolution_binning=False, return_dict=False)[0]
    save_file({"noise": noise_i2v.contiguous(), "image_latent": recorded["image_latent"].float().contiguous(),
               "latents": latents.float().contiguous(), "video": video.float().contiguous(),
               "image": torch.from_numpy(np.asarray(pixels)).float().contiguous()},
              os.path.join(ROOT, "i2v.safetensors"),
              metadata=dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED),
                            prompt=PROMPT, negative_prompt=NEGATIVE, steps="4", guidance="6.0", flow_shift="8.0"))
    print("i2v latents", tuple(latents.shape), float(latents.abs().mean()))


if __name__ == "__main__":
    main()
