#!/usr/bin/env python3
"""Reference fixtures for resolution binning (MODEL.md §5.1): diffusers 0.42.1
`VideoProcessor.classify_height_width_bin` on many requests for both bin tables, and
`resize_and_crop_tensor` (bilinear, align_corners=False, centre crop) on random frames.

Writes tests/fixtures/pipeline/. Run from the repository root:
    python3 tools/make_binning_fixtures.py
"""

import json
import os
import shutil

import diffusers
import torch
from diffusers.pipelines.sana_video.pipeline_sana_video import ASPECT_RATIO_480_BIN, ASPECT_RATIO_720_BIN
from diffusers.video_processor import VideoProcessor
from safetensors.torch import save_file

SEED = 20261128
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pipeline")
COMMAND = "python3 tools/make_binning_fixtures.py"
REQUESTS = [(480, 832), (704, 1280), (1080, 1920), (1920, 1080), (1000, 1000), (720, 1280), (1556, 2048),
            (512, 512), (600, 1200), (900, 500), (333, 777), (2160, 3840), (1, 4), (4, 1)]
# (B, C, T, H, W), new height, new width: up, down, identity, mixed
RESIZES = [((2, 3, 2, 16, 24), 20, 30), ((1, 3, 3, 15, 13), 7, 9), ((1, 1, 1, 10, 10), 10, 10),
           ((1, 2, 2, 9, 31), 17, 12)]


def main():
    gen = torch.Generator().manual_seed(SEED)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    bins = {}
    for size, table in [(30, ASPECT_RATIO_480_BIN), (22, ASPECT_RATIO_720_BIN)]:
        bins[str(size)] = [[h, w, *VideoProcessor.classify_height_width_bin(h, w, ratios=table)] for h, w in REQUESTS]
    with open(os.path.join(OUT, "bins.json"), "w") as f:
        json.dump(dict(bins=bins, script=COMMAND, diffusers=diffusers.__version__), f, indent=1)
        f.write("\n")
    for i, (shape, new_h, new_w) in enumerate(RESIZES):
        x = torch.rand(shape, generator=gen) * 2 - 1
        y = VideoProcessor.resize_and_crop_tensor(x, new_w, new_h)
        save_file({"input": x.clone().contiguous(), "output": y.clone().contiguous()}, os.path.join(OUT, f"resize.{i}.safetensors"),
                  metadata=dict(script=COMMAND, diffusers=diffusers.__version__, seed=str(SEED),
                                new_height=str(new_h), new_width=str(new_w)))
        print(f"resize.{i}: {tuple(shape)} -> {tuple(y.shape)}")


if __name__ == "__main__":
    main()
