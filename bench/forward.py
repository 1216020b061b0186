"""`council bench forward`: what each of the slot model's decode techniques buys, one forward
at a time.

The same weights, three ways of running a decode step of `batch` rows that share a prompt (the
particles of one request), alternating `repeats` times (this machine drifts), each a fresh
`steps`-token decode from the cached prompt, for each prompt length asked for:

- plain:         `F.linear` matmuls, every row's keys gathered from the slot pool;
- packed:        the matmuls on weights prepacked for oneDNN (`slot_model.Linear`);
- packed+shared: also the prompt's keys read once for the batch (`_split_decode_attention`).

Reported per prompt length: ms per step (medians), each variant's speed-up over plain, how far
each one's log-probs lie from plain's on the first step, and how far each variant's and Hugging
Face's own forward (in the bench's dtype) lie from a float32 forward of the same sequence: the
largest difference over the vocabulary and the expected one under the float32 distribution
(bf16 rounds in a different order in each, so bf16 figures say whether ours stay as close to
the float32 model as Hugging Face's bf16 forward does).

    council bench forward --prompts 60,420 --json bench/results/forward.json
"""

from __future__ import annotations

import time
from pathlib import Path
from statistics import median

import torch

from actors.engines.slot_model import Row, SlotKVModel
from actors.engines.torch_engine import load_hf_model, pick_device, pick_dtype
from actors.engines.torch_thread import on_torch_thread
from bench.engine import shared_prompt
from bench.measure import write_report
from cluster.config import EngineConfig

VARIANTS = {"plain": dict(pack_weights=False, share_prefix=False),
            "packed": dict(pack_weights=True, share_prefix=False),
            "packed+shared": dict(pack_weights=True, share_prefix=True)}


class _Decoder:
    """One variant's slot model, the prompt computed once, rows decoding from it."""

    def __init__(self, model, prompt_ids: list[int], batch: int, steps: int, **variant):
        # Each decode starts again from the prompt and reuses the same slots after it.
        self.slots = SlotKVModel(model, len(prompt_ids) + batch * steps, **variant)
        self.prompt_at = list(range(len(prompt_ids)))
        self.slots.forward([Row([], prompt_ids, self.prompt_at, [len(prompt_ids) - 1])])
        self.batch = batch

    def decode(self, tokens: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Seconds per step of decoding `tokens` [steps, batch], and the first step's log-probs."""
        paths = [list(self.prompt_at) for _ in range(self.batch)]
        free = iter(range(len(self.prompt_at), self.slots.capacity))
        first = None
        start = time.perf_counter()
        for step in tokens.tolist():
            rows = []
            for path, tok in zip(paths, step):
                slot = next(free)
                rows.append(Row(list(path), [tok], [slot], [0]))
                path.append(slot)
            out = self.slots.forward(rows)
            first = out if first is None else first
        return (time.perf_counter() - start) / len(tokens), first


def _last_logprobs(model, seq: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return torch.log_softmax(model(torch.tensor([seq])).logits[0, -1].float(), dim=-1)


def _distance(row: torch.Tensor, reference: torch.Tensor) -> dict:
    """Largest |difference| over the vocabulary, and its expectation under the reference."""
    error = (row.float() - reference).abs()
    return {"max": float(error.max()), "expected": float((reference.exp() * error).sum())}


def prompt_of(tokenizer, tokens: int) -> list[int]:
    """`tokens` ids of the bench's prompt text, repeated as often as it takes."""
    ids = tokenizer(shared_prompt(tokenizer))["input_ids"]
    return (ids * (tokens // len(ids) + 1))[:tokens]


def run(json_path: Path | None = None, batch: int = 32, steps: int = 32, dtype: str = "auto",
        repeats: int = 5, model: str = "smollm2", prompts: tuple[int, ...] = (60, 420)) -> dict:
    config = EngineConfig(model=model, dtype=dtype)
    device = pick_device(config)
    torch_dtype = pick_dtype(config, device)
    threads = on_torch_thread(torch.get_num_threads)
    hf_model, tokenizer, name = on_torch_thread(load_hf_model, config, device, torch_dtype)
    tokens = torch.randint(100, hf_model.config.vocab_size, (steps, batch), generator=torch.Generator().manual_seed(0))
    reference_model = hf_model if torch_dtype == torch.float32 else \
        on_torch_thread(load_hf_model, config.model_copy(update={"dtype": "float32"}), device, torch.float32)[0]

    def measure(prompt_ids: list[int]) -> dict:
        decoders = {k: _Decoder(hf_model, prompt_ids, batch, steps, **v) for k, v in VARIANTS.items()}
        firsts = {k: d.decode(tokens[:2])[1] for k, d in decoders.items()}  # warm-up
        runs = {k: [] for k in decoders}
        for _ in range(repeats):
            for k, d in decoders.items():
                runs[k].append(d.decode(tokens)[0] * 1000)
        ms = {k: median(v) for k, v in runs.items()}
        # Row 0 of the first step scored the prompt plus that row's first token.
        seq = prompt_ids + [int(tokens[0, 0])]
        reference = _last_logprobs(reference_model, seq)
        from_float32 = {k: _distance(f[0], reference) for k, f in firsts.items()}
        from_float32["hugging_face"] = _distance(_last_logprobs(hf_model, seq), reference)
        return {"ms_per_step": ms, "speedup_vs_plain": {k: ms["plain"] / v for k, v in ms.items()}, "runs_ms": runs,
                "max_abs_logprob_diff_vs_plain": {k: float((f - firsts["plain"]).abs().max()) for k, f in firsts.items()},
                "logprob_distance_from_float32": from_float32}

    print(f"model {name} on {device}, {str(torch_dtype).removeprefix('torch.')}, {threads} threads; batch {batch} "
          f"sharing a prompt, {steps} decode steps, {repeats} alternating runs")
    by_prompt = {}
    for length in prompts:
        measured = by_prompt[str(length)] = on_torch_thread(measure, prompt_of(tokenizer, length))
        ms = measured["ms_per_step"]
        for k, v in ms.items():
            print(f"  prompt {length:4d}  {k:14s} {v:7.1f} ms/step  x{ms['plain'] / v:.2f}  "
                  f"(max |log-prob - plain's| {measured['max_abs_logprob_diff_vs_plain'][k]:.2g})")
        far = measured["logprob_distance_from_float32"]
        print(f"  prompt {length:4d}  |log-prob - float32 forward's|, max / expected: " + ", ".join(
            f"{k} {d['max']:.2g} / {d['expected']:.2g}" for k, d in far.items()))
    report = {
        "benchmark": "forward", "model": name, "device": device, "dtype": str(torch_dtype).removeprefix("torch."),
        "threads": threads, "torch": torch.__version__, "batch": batch, "steps": steps, "repeats": repeats,
        "prompts": by_prompt,
    }
    if json_path is not None:
        write_report(Path(json_path), report)
    return report
