"""bf16 rounding emulated in an f32 PyTorch model, for the error-budget scripts
(ltx2_bf16_error_budget.py, wan_bf16_error_budget.py): where our CUDA backend rounds a tensor to
bf16, a hook rounds it here, so one f32 model can be run with any subset of our roundings."""

import contextlib

import torch


def bf16(x):
    """x rounded to bf16, kept in f32."""
    return x.to(torch.bfloat16).to(torch.float32)


@contextlib.contextmanager
def rounded(inputs_of=(), outputs_of=()):
    """While inside: the tensor inputs of every module in `inputs_of` and the output of every module
    in `outputs_of` rounded to bf16."""
    round_inputs = lambda _module, inputs: tuple(bf16(x) if torch.is_tensor(x) else x for x in inputs)  # noqa: E731
    round_output = lambda _module, _inputs, out: bf16(out)  # noqa: E731
    hooks = [m.register_forward_pre_hook(round_inputs) for m in inputs_of]
    hooks += [m.register_forward_hook(round_output) for m in outputs_of]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
