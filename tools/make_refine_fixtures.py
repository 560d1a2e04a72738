#!/usr/bin/env python3
"""Reference for Refine with the SANA-Video transformer in refine mode (issue 6, MODEL.md §5.3, §8):
an img2img pass composed of diffusers 0.42.1 components, as SD3's img2img pipeline does it with a
flow-match Euler scheduler:

  scheduler = FlowMatchEulerDiscreteScheduler(shift=flow_shift); set_timesteps(steps)
  t_start = int(steps − steps·strength); timesteps = scheduler.timesteps[t_start:]
  x = scheduler.scale_noise(z, timesteps[:1], noise)          # σ₀·noise + (1 − σ₀)·z
  for t: v = CFG(transformer([x, x], t, [negative, positive])); x = scheduler.step(v, t, x)
  then the VAE decode of SanaVideoPipeline.

Input z: the final latents of the text-to-video fixture (tests/fixtures/pipeline/t2v.safetensors),
i.e. Base's output handed to Refine without a decode. Components: the bundled tiny pipeline
(tests/fixtures/pipeline/tiny-sana-video). Writes tests/fixtures/refine/refine.safetensors.

Run from the repository root: /tmp/sana-tools/bin/python tools/make_refine_fixtures.py
"""

import inspect
import os

import diffusers
import torch
from diffusers import SanaVideoPipeline
from refine_reference import refine_tail
from safetensors.torch import load_file, save_file

SEED = 20261128
ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
COMMAND = "python3 tools/make_refine_fixtures.py"
PROMPT = "A Cat Sleeping on a Windowsill motion score: 30."
NEGATIVE = "blurry, jittery"
STEPS, STRENGTH, GUIDANCE, SHIFT = 10, 0.45, 4.5, 3.0


def main():
    gen = torch.Generator().manual_seed(SEED)
    pipe = SanaVideoPipeline.from_pretrained(os.path.join(ROOT, "pipeline", "tiny-sana-video")).to(torch.float32)
    chi = inspect.signature(SanaVideoPipeline.__call__).parameters["complex_human_instruction"].default
    with torch.no_grad():
        pos, pos_mask, neg, neg_mask = pipe.encode_prompt(PROMPT, True, negative_prompt=NEGATIVE,
                                                          complex_human_instruction=chi)
    embeds, mask = torch.cat([neg, pos]), torch.cat([neg_mask, pos_mask])
    z = load_file(os.path.join(ROOT, "pipeline", "t2v.safetensors"))["latents"]
    noise = torch.randn(z.shape, generator=gen)

    x, timesteps = refine_tail(pipe.transformer, z, noise, embeds, mask, STEPS, STRENGTH, SHIFT, GUIDANCE)
    with torch.no_grad():
        # decode as SanaVideoPipeline does (Wan VAE statistics), post-processed to [0, 1]
        mean = torch.tensor(pipe.vae.config.latents_mean).view(1, -1, 1, 1, 1)
        std = torch.tensor(pipe.vae.config.latents_std).view(1, -1, 1, 1, 1)
        video = pipe.vae.decode(x / (1.0 / std) + mean).sample
        video = pipe.video_processor.postprocess_video(video, output_type="pt")
    save_file({"latents_in": z.contiguous(), "noise": noise.contiguous(), "latents": x.contiguous(),
               "video": video.float().contiguous()},
              os.path.join(ROOT, "refine", "refine.safetensors"),
              metadata=dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED),
                            prompt=PROMPT, negative_prompt=NEGATIVE, steps=str(STEPS), strength=str(STRENGTH),
                            guidance=str(GUIDANCE), flow_shift=str(SHIFT),
                            timesteps=",".join(f"{float(t):.6f}" for t in timesteps)))
    print("refine", tuple(x.shape), "timesteps", [round(float(t), 3) for t in timesteps], "video", tuple(video.shape))


if __name__ == "__main__":
    main()
