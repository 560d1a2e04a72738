#!/usr/bin/env python3
"""Reference fixtures for the text encoder (MODEL.md §4): a tiny random-weight `Gemma2Model`
(transformers, pinned in tools/requirements.txt, eager attention so the logit soft-capping is
applied, as transformers runs Gemma-2 by default), a small `tokenizer.json` shaped like Gemma's
(byte-fallback BPE, spaces as "▁", <pad>=0 <eos>=1 <bos>=2, "<bos> $A" template), and the
SANA-Video prompt path through diffusers' own `SanaVideoPipeline.encode_prompt`.

Writes tests/fixtures/text/tiny-gemma/{text_encoder,tokenizer}/ and
tests/fixtures/text/*.safetensors. Run from the repository root:
    python3 tools/make_text_fixtures.py
"""

import inspect
import json
import os
import shutil

import diffusers
import tokenizers
import torch
import transformers
from diffusers import SanaVideoPipeline
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, processors, trainers
from transformers import Gemma2Config, Gemma2Model, PreTrainedTokenizerFast

SEED = 20261128
ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "text")
MODEL = os.path.join(ROOT, "tiny-gemma")
COMMAND = "python3 tools/make_text_fixtures.py"

CORPUS = [
    "a cat sleeping on a warm sunny windowsill with red flowers",
    "a busy city street at dusk with glowing street lamps and a double-decker bus",
    "given a user prompt, generate an enhanced prompt that provides detailed visual descriptions",
    "a chaotic sequence with misshapen, deformed limbs in heavy motion blur, jump cuts",
    "motion score: 30. high motion low motion slow pan camera zoom",
] * 20

PROMPTS = {
    # one prompt each: empty, ordinary with capitals and spaces to strip, very long (truncated),
    # non-ASCII (final sigma, dotted capital I, CJK, emoji: byte fallback)
    "empty": [""],
    "simple": ["  A Cat Sleeping on a Windowsill  "],
    "long": ["a busy city street at dusk " * 150],
    "non-ascii": ["ΟΔΟΣ İstanbul 東京 at night 🌃 café"],
    "batch2": ["a cat sleeping", "a busy city street at dusk, glowing lamps"],
}


def build_tokenizer():
    special = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token=None, fuse_unk=False))
    tok.normalizer = normalizers.Replace(" ", "▁")
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=special, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return tok


def randomise(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:  # RMSNorm weights act as (1 + w): spread them around 0
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / (p.shape[-1] ** 0.5))


def write_released_config():
    """Gemma-2-2B (transformers' Gemma2Config defaults are that model, MODEL.md §4) and its
    decoder's parameter count, for the real-size check."""
    configs = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "configs")
    config = Gemma2Config()
    with torch.device("meta"):
        count = sum(p.numel() for p in Gemma2Model(config).parameters())
    data = config.to_dict()
    data["architectures"] = ["Gemma2ForCausalLM"]
    with open(os.path.join(configs, "gemma_2_2b.json"), "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    counts_path = os.path.join(configs, "parameter_counts.json")
    counts = json.load(open(counts_path)) if os.path.exists(counts_path) else dict(counts={})
    counts["counts"]["gemma_2_2b_decoder"] = count
    with open(counts_path, "w") as f:
        json.dump(counts, f, indent=2)
        f.write("\n")
    print(f"gemma_2_2b decoder: {count:,} parameters")


def main():
    torch.manual_seed(SEED)
    write_released_config()
    gen = torch.Generator().manual_seed(SEED)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(os.path.join(MODEL, "tokenizer"))
    tok = build_tokenizer()
    tok.save(os.path.join(MODEL, "tokenizer", "tokenizer.json"))

    config = Gemma2Config(
        vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=48, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, hidden_activation="gelu_pytorch_tanh",
        rms_norm_eps=1e-6, query_pre_attn_scalar=8, attn_logit_softcapping=3.0, final_logit_softcapping=30.0,
        sliding_window=5, pad_token_id=0, eos_token_id=1, bos_token_id=2, max_position_embeddings=8192,
    )
    config._attn_implementation = "eager"
    model = Gemma2Model(config)
    randomise(model, gen)
    model = model.float().eval()
    model.save_pretrained(os.path.join(MODEL, "text_encoder"), safe_serialization=True)
    meta = dict(script=COMMAND, transformers=transformers.__version__, diffusers=diffusers.__version__,
                tokenizers=tokenizers.__version__, torch=torch.__version__, seed=str(SEED), attention="eager")

    # 1. the decoder alone on token ids (with right padding and a sliding window shorter than L)
    ids = torch.randint(3, config.vocab_size, (2, 13), generator=gen)
    mask = torch.ones(2, 13, dtype=torch.long)
    mask[1, 9:] = 0
    ids[1, 9:] = 0
    ids[:, 0] = 2
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden64 = model.double()(input_ids=ids, attention_mask=mask).last_hidden_state
    model = model.float()
    save_file({"input_ids": ids.float(), "attention_mask": mask.float(), "last_hidden_state": hidden.contiguous(),
               "last_hidden_state_f64": hidden64.float().contiguous()},
              os.path.join(ROOT, "decoder.safetensors"), metadata=meta)
    print("decoder: f32 vs f64 rel L2", float((hidden.double() - hidden64).norm() / hidden64.norm()))

    # 2. the SANA-Video prompt path, through diffusers' own encode_prompt (CHI on, negative prompt)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                     pad_token="<pad>", unk_token="<unk>", padding_side="right")
    pipe = SanaVideoPipeline(tokenizer=hf_tok, text_encoder=model, vae=None, transformer=None, scheduler=None)
    # the CHI is a default argument of __call__ (encode_prompt's own default is none)
    chi_lines = inspect.signature(SanaVideoPipeline.__call__).parameters["complex_human_instruction"].default
    negative = ("A chaotic sequence with misshapen, deformed limbs in heavy motion blur, sudden disappearance, "
                "jump cuts, jerky movements")
    for case, prompts in PROMPTS.items():
        prompts = [p + " motion score: 30." for p in prompts]
        with torch.no_grad():
            pe, pm, ne, nm = pipe.encode_prompt(
                prompts, do_classifier_free_guidance=True, negative_prompt=negative, device=torch.device("cpu"),
                max_sequence_length=300, complex_human_instruction=chi_lines,
            )
        text = {f"prompt.{i}": p for i, p in enumerate(prompts)}
        save_file({"prompt_embeds": pe.float().contiguous(), "prompt_attention_mask": pm.float().contiguous(),
                   "negative_prompt_embeds": ne.float().contiguous(),
                   "negative_prompt_attention_mask": nm.float().contiguous()},
                  os.path.join(ROOT, f"prompt.{case}.safetensors"),
                  metadata=dict(meta, negative_prompt=negative, **text))
        print(f"prompt.{case}: {tuple(pe.shape)}, tokens kept {int(pm.sum())}")
    with open(os.path.join(ROOT, "chi_diffusers.json"), "w") as f:
        json.dump(chi_lines, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
