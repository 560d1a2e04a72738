#!/usr/bin/env python3
"""Reference fixtures for the samplers (MODEL.md §5): diffusers 0.42.1
`DPMSolverMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction")` and
`FlowMatchEulerDiscreteScheduler(shift=s)`: their sigmas and timesteps, and a whole sampling
loop on a small random latent with stored random "velocities", so our step functions can be
compared value for value.

Writes tests/fixtures/sampler/*.safetensors. Run from the repository root:
    python3 tools/make_sampler_fixtures.py
"""

import os
import shutil

import diffusers
import torch
from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler
from safetensors.torch import save_file

SEED = 20261128
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "sampler")
COMMAND = "python3 tools/make_sampler_fixtures.py"
CASES = [("dpm", 50, 8.0), ("dpm", 10, 7.0), ("dpm", 20, 1.0), ("euler", 50, 8.0), ("euler", 6, 3.0)]


def main():
    gen = torch.Generator().manual_seed(SEED)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for kind, steps, shift in CASES:
        if kind == "dpm":
            sched = DPMSolverMultistepScheduler(flow_shift=shift, use_flow_sigmas=True, prediction_type="flow_prediction")
        else:
            sched = FlowMatchEulerDiscreteScheduler(shift=shift)
        sched.set_timesteps(steps)
        x = torch.randn((1, 3, 2, 4, 5), generator=gen)
        velocities = torch.randn((steps,) + tuple(x.shape), generator=gen)
        trajectory = [x.clone()]
        for i, t in enumerate(sched.timesteps):
            x = sched.step(velocities[i], t, x, return_dict=False)[0]
            trajectory.append(x.clone())
        name = f"{kind}.{steps}.{shift:g}"
        save_file({
            "sigmas": sched.sigmas.float().contiguous(),
            "timesteps": sched.timesteps.double().float().contiguous(),
            "velocities": velocities.contiguous(),
            "trajectory": torch.stack(trajectory).contiguous(),
        }, os.path.join(OUT, f"{name}.safetensors"),
            metadata=dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED),
                          kind=kind, steps=str(steps), shift=str(shift)))
        print(name, "sigmas", [round(float(s), 5) for s in sched.sigmas[:3]], "...", float(sched.sigmas[-2]),
              "timesteps", sched.timesteps[:3].tolist())


if __name__ == "__main__":
    main()
