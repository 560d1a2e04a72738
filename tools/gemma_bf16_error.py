#!/usr/bin/env python3
"""How far transformers' own Gemma2Model in bf16 is from itself in f32 on the weights and inputs of
tests/gpu_backend.rs `text_encoder_matches_cpu_at_width_512` (gemma_2_small.json, our seeded random
weights, a padded batch of 77 and 41 tokens): the yardstick for that test's CUDA-vs-CPU error. Also
prints our CPU f32 forward vs transformers' f32 forward, which shows the weights arrived intact.

Eager attention, as tools/bf16_reference_error.py uses for the tiny fixture. Relative L2 is over the
whole last_hidden_state, padded positions included, as the test compares; also over real tokens.
Measured (transformers 5.23, torch CPU), id seeds 1/2/3: bf16 vs f32 1.85/1.80/1.87e-2; ours CPU vs
transformers f32 2.0/1.9/2.0e-6. transformers keeps the residual stream in bf16, our CUDA encoder in f32.

Run from the repository root with the tools/requirements.txt environment, after writing the model
folder and our forwards with the ignored Rust test (one forward file per id seed):
    for s in 1 2 3; do SANA_TEST_SEED=$s cargo test --test dump_random_gemma -- --ignored; done
    python tools/gemma_bf16_error.py
"""

import glob
import os
import re

import torch
from safetensors.torch import load_file
from transformers import Gemma2Model

DUMP = os.path.join(os.path.dirname(__file__), "..", "target", "random_gemma_small")
MASK64 = (1 << 64) - 1


def splitmix64(state):
    """src/engine/weights.rs `splitmix64`: (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def test_inputs(seed, length=77, lens=(77, 41)):
    """The ids and mask of `text_encoder_matches_cpu_at_width_512`: BOS 2, then 3 + splitmix64 % 4000."""
    ids, state = [], seed
    for i in range(2 * length):
        if i % length == 0:
            ids.append(2)
        else:
            state, r = splitmix64(state)
            ids.append(3 + r % 4000)
    mask = [1 if i % length < lens[i // length] else 0 for i in range(2 * length)]
    return torch.tensor(ids).view(2, length), torch.tensor(mask).view(2, length)


def rel(out, ref):
    return float((out.float() - ref).norm() / ref.norm())


models = {}
for dtype in (torch.float32, torch.bfloat16):
    model, info = Gemma2Model.from_pretrained(DUMP, dtype=dtype, attn_implementation="eager", output_loading_info=True)
    assert not any(info.values()), f"the dump does not match Gemma2Model's tensors: {info}"
    models[dtype] = model.eval()

paths = glob.glob(os.path.join(DUMP, "forward.seed*.safetensors"))
assert paths, f"no forwards in {DUMP}: run the ignored Rust test tests/dump_random_gemma.rs first"
for path in sorted(paths, key=lambda p: int(re.search(r"seed(\d+)", p).group(1))):
    seed = int(re.search(r"seed(\d+)", path).group(1))
    ids, mask = test_inputs(seed)
    ours = load_file(path)
    assert torch.equal(ours["input_ids"].long(), ids) and torch.equal(ours["attention_mask"].long(), mask)
    with torch.no_grad():
        f32, bf16 = (models[d](input_ids=ids, attention_mask=mask).last_hidden_state.float() for d in models)
    real, cpu = mask.bool(), ours["last_hidden_state"]
    print(
        f"id seed {seed}: transformers bf16 vs f32: rel L2 {rel(bf16, f32):.3e}"
        f" (real tokens {rel(bf16[real], f32[real]):.3e});"
        f" ours CPU f32 vs transformers f32: {rel(cpu, f32):.3e} (real tokens {rel(cpu[real], f32[real]):.3e})"
    )
