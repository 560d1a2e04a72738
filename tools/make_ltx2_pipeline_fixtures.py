#!/usr/bin/env python3
"""A tiny 720p-style SANA-Video pipeline (the LTX-2 VAE model, MODEL.md §3.1, §8) and the reference
for Refine with the ×2 latent upsampler (MODEL.md §8.2 step 1), composed of diffusers 0.42.1
components.

The folder tests/fixtures/pipeline/tiny-sana-video-ltx2 (diffusers layout):
  transformer/       a tiny random SanaVideoTransformer3DModel, in/out_channels 8 (the tiny LTX-2
                     VAE's latent channels), patch (1, 1, 1) as the 720p model's, caption_channels =
                     the tiny Gemma-2's hidden size
  vae/               the tiny LTX-2 VAE of tools/make_ltx2_fixtures.py, copied byte for byte
  text_encoder/, tokenizer/, scheduler/   copied from tests/fixtures/pipeline/tiny-sana-video
  latent_upsampler/  the tiny upsampler of tools/make_upsampler_fixtures.py, copied byte for byte
  model_index.json   tiny-sana-video's with the VAE class changed (SanaVideoPipeline takes an
                     AutoencoderKLLTX2Video); the upsampler is not a SanaVideoPipeline component, so
                     it is not listed (diffusers would refuse the unknown module)

The reference (tests/fixtures/refine/refine_x2.safetensors), as tools/make_refine_fixtures.py does ×1
with the upsampling in front (the refiner app's hand-off):
  z  = seeded random Base-style latents (transformer space, normalised)
  z2 = LTX2Pipeline._normalize_latents(upsampler(LTX2LatentUpsamplePipeline._denormalize_latents(
           z, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)), same statistics)
  x  = scheduler.scale_noise(z2, timesteps[:1], noise)     # noise of the upsampled shape, stored
  flow Euler over the schedule's tail with CFG, then SanaVideoPipeline's decode (LTX-2 branch).

Needs the tiny-sana-video, tiny-ltx2 VAE and tiny upsampler fixtures. Run from the repository root:
    /tmp/sana-tools/bin/python tools/make_ltx2_pipeline_fixtures.py
"""

import inspect
import json
import os
import shutil

import diffusers
import torch
from diffusers import SanaVideoPipeline, SanaVideoTransformer3DModel
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
from diffusers.pipelines.ltx2.pipeline_ltx2 import LTX2Pipeline
from diffusers.pipelines.ltx2.pipeline_ltx2_latent_upsample import LTX2LatentUpsamplePipeline
from refine_reference import refine_tail
from safetensors.torch import save_file

SEED = 20261210
ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
WAN_PIPELINE = os.path.join(ROOT, "pipeline", "tiny-sana-video")
VAE = os.path.join(ROOT, "vae", "tiny-ltx2", "vae")
UPSAMPLER = os.path.join(ROOT, "upsampler", "tiny-ltx2-upsampler")
FOLDER = os.path.join(ROOT, "pipeline", "tiny-sana-video-ltx2")
COMMAND = "python3 tools/make_ltx2_pipeline_fixtures.py"
PROMPT = "A Cat Sleeping on a Windowsill"
NEGATIVE = "blurry, jittery"
STEPS, STRENGTH, GUIDANCE, SHIFT = 10, 0.45, 4.5, 3.0
# Base-style latents: 2 latent frames (9 frames) of 1×2 (32×64 pixels) → ×2 → 2×4 (64×128; the VAE
# decoder pads by reflection, so the upsampled size must be ≥ 2 on each axis)
LATENT_SHAPE = (1, 8, 2, 1, 2)


def write_folder(gen):
    if os.path.isdir(FOLDER):
        shutil.rmtree(FOLDER)
    os.makedirs(FOLDER)
    for component in ["text_encoder", "tokenizer", "scheduler"]:
        shutil.copytree(os.path.join(WAN_PIPELINE, component), os.path.join(FOLDER, component))
    shutil.copytree(VAE, os.path.join(FOLDER, "vae"))
    shutil.copytree(UPSAMPLER, os.path.join(FOLDER, "latent_upsampler"))
    with open(os.path.join(WAN_PIPELINE, "text_encoder", "config.json")) as f:
        caption_channels = json.load(f)["hidden_size"]
    with open(os.path.join(VAE, "config.json")) as f:
        latent_channels = json.load(f)["latent_channels"]
    transformer = SanaVideoTransformer3DModel(
        in_channels=latent_channels, out_channels=latent_channels, num_attention_heads=2, attention_head_dim=12,
        num_layers=2, num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24,
        caption_channels=caption_channels, mlp_ratio=2.5, attention_bias=False, sample_size=22,
        patch_size=(1, 1, 1), norm_elementwise_affine=False, norm_eps=1e-6, qk_norm="rms_norm_across_heads",
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
    transformer.eval().save_pretrained(os.path.join(FOLDER, "transformer"), safe_serialization=True)
    with open(os.path.join(WAN_PIPELINE, "model_index.json")) as f:
        index = json.load(f)
    index["vae"] = ["diffusers", "AutoencoderKLLTX2Video"]
    with open(os.path.join(FOLDER, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(FOLDER) for n in names)
    print(f"{FOLDER}: {size / 1e6:.2f} MB")


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    write_folder(gen)

    pipe = SanaVideoPipeline.from_pretrained(FOLDER).to(torch.float32)
    assert type(pipe.vae).__name__ == "AutoencoderKLLTX2Video", type(pipe.vae)
    upsampler = LTX2LatentUpsamplerModel.from_pretrained(os.path.join(FOLDER, "latent_upsampler")).float().eval()
    chi = inspect.signature(SanaVideoPipeline.__call__).parameters["complex_human_instruction"].default
    with torch.no_grad():
        pos, pos_mask, neg, neg_mask = pipe.encode_prompt(PROMPT, True, negative_prompt=NEGATIVE,
                                                          complex_human_instruction=chi)
    embeds, mask = torch.cat([neg, pos]), torch.cat([neg_mask, pos_mask])
    z = torch.randn(LATENT_SHAPE, generator=gen)

    vae = pipe.vae
    mean, std, scaling = vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    with torch.no_grad():
        x = LTX2LatentUpsamplePipeline._denormalize_latents(z, mean, std, scaling)
        x = upsampler(x)
        upsampled = LTX2Pipeline._normalize_latents(x, mean, std, scaling)
    noise = torch.randn(upsampled.shape, generator=gen)

    x, timesteps = refine_tail(pipe.transformer, upsampled, noise, embeds, mask, STEPS, STRENGTH, SHIFT, GUIDANCE)
    with torch.no_grad():
        # decode as SanaVideoPipeline does for an AutoencoderKLLTX2Video, post-processed to [0, 1]
        m = mean.view(1, -1, 1, 1, 1)
        s = 1.0 / std.view(1, -1, 1, 1, 1)
        video = vae.decode(x / s + m, return_dict=False)[0]
        video = pipe.video_processor.postprocess_video(video, output_type="pt")
    save_file({"latents_in": z.contiguous(), "upsampled": upsampled.contiguous(), "noise": noise.contiguous(),
               "latents": x.contiguous(), "video": video.float().contiguous()},
              os.path.join(ROOT, "refine", "refine_x2.safetensors"),
              metadata=dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED),
                            prompt=PROMPT, negative_prompt=NEGATIVE, steps=str(STEPS), strength=str(STRENGTH),
                            guidance=str(GUIDANCE), flow_shift=str(SHIFT),
                            timesteps=",".join(f"{float(t):.6f}" for t in timesteps)))
    print("refine ×2", tuple(z.shape), "->", tuple(x.shape), "timesteps", [round(float(t), 3) for t in timesteps],
          "video", tuple(video.shape))


if __name__ == "__main__":
    main()
