"""The refine mode's reference denoising, shared by make_refine_fixtures.py and
make_ltx2_pipeline_fixtures.py: re-noise to the schedule's σ at 1 − strength and run the tail of a
flow-Euler schedule with classifier-free guidance on the [uncond, cond] batch, cutting the
schedule as diffusers' image-to-image pipelines do (README, `sana refine`)."""

import torch
from diffusers import FlowMatchEulerDiscreteScheduler


def refine_tail(transformer, latents, noise, embeds, mask, steps, strength, shift, guidance):
    """Returns (refined latents, the timesteps run). `embeds`/`mask` are [negative, positive]."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(steps)
    init_timestep = min(steps * strength, steps)
    t_start = int(max(steps - init_timestep, 0))
    timesteps = scheduler.timesteps[t_start:]
    scheduler.set_begin_index(t_start)
    x = scheduler.scale_noise(latents, timesteps[:1], noise)
    with torch.no_grad():
        for t in timesteps:
            v = transformer(torch.cat([x, x]), encoder_hidden_states=embeds, encoder_attention_mask=mask,
                            timestep=t.expand(2), return_dict=False)[0].float()
            uncond, cond = v.chunk(2)
            x = scheduler.step(uncond + guidance * (cond - uncond), t, x, return_dict=False)[0]
    return x, timesteps
