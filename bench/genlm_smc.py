"""genlm-control's own SMC (`TokenSampler.smc`) on the throughput bench's program, for `council bench throughput`.

Runs in genlm-control's virtual environment (`scripts/install_genlm.sh`: it pulls genlm-backend,
genlm-grammar, numba, bitsandbytes…), so it imports nothing from Council and prints one JSON
object on its last stdout line:

    .venv-genlm/bin/python bench/genlm_smc.py --model-dir DIR --prompt-file F \\
        --particles 32 --steps 32 --mode best --task fixed

Tasks:
- `fixed`: the throughput program; every particle samples exactly `steps` tokens with no
  constraint, through `direct_token_sampler(PromptedLLM)`. genlm-control stops a particle when it
  draws its reserved EOS, and at `max_tokens` it forces EOS and weighs it by the target's EOS
  probability. So the PromptedLLM is built with an empty EOS set (`TokenMappings` over the
  whole byte vocabulary, `eos_byte_strings=[]`): its EOS weight is then log 0, EOS is never
  drawn, and the model's own end token is an ordinary token, as in llamppl's FixedLength (a
  two-line subclass works around 0.4.1 indexing with a float tensor when that set is empty). The
  length is closed by `smc(..., terminate_when=len(context) >= steps)`, which appends EOS with
  no weight correction and no extra forward pass (`max_tokens` = steps + 1 is only a backstop:
  its forced EOS would weigh log 0 here).
- `words`: a constraint as a genlm-control potential. The answer (chat-templated request for one
  sentence about the prompt text) must match the regex `[A-Z][A-Za-z'-]*(,? [A-Za-z'-]+){a,b}\\.`,
  i.e. one sentence of `--min-words` to `--max-words` words ending with a period, as a
  `BoolFSA.from_regex(...)` coerced to the LLM's tokens (`.coerce(llm, f=b"".join)`) and
  enforced inside the token sampler by `AWRS(llm, fsa)` (adaptive weighted rejection
  sampling); the model's EOS (`<|im_end|>`) ends an answer, accepted only where the FSA
  accepts the whole string. `steps` is `max_tokens` (EOS included): a particle that has not
  finished by then is forced to EOS and dies unless its string is complete, so give it room
  (≥ 2 tokens per word). Whether each final answer satisfies the constraint is checked here in
  plain Python (regex and word count), not taken from genlm.

Modes: `shipped` is `PromptedLLM.from_name(dir, backend="hf")` with its defaults (the directory's
dtype via `torch_dtype="auto"`, float32 here; auto-batching up to 20 queries with a 20 ms
timeout; no prompt KV cache, so every forward re-reads the prompt); `best` gives the
`AsyncTransformer` a batch as wide as the particle count, a 1 ms batching timeout, the bench's
dtype, and the prompt's keys and values cached up front (`lm.cache_kv`). In both, genlm's
potentials are auto-batched across particles (its default). Its HF backend keeps no per-particle
KV cache: past the cached prompt, each step re-runs the particle's generated tokens.

`tokens` counts the tokens of the final particles (EOS excluded), as llamppl_smc.py does.
"""

import argparse
import asyncio
import json
import os
import re
import time


def word_regex(min_words: int, max_words: int) -> str:
    return rf"[A-Z][A-Za-z'-]*(,? [A-Za-z'-]+){{{min_words - 1},{max_words - 1}}}\."


def satisfies(text: str | None, min_words: int, max_words: int) -> bool:
    """The `words` constraint, checked in plain Python."""
    if text is None or not re.fullmatch(word_regex(min_words, max_words), text):
        return False
    return min_words <= len(text.split()) <= max_words and text.endswith(".")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--prompt-file", required=True)
    ap.add_argument("--particles", type=int, default=32)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--mode", choices=("shipped", "best"), default="best")
    ap.add_argument("--task", choices=("fixed", "words"), default="fixed")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--ess-threshold", type=float, default=0.5)
    ap.add_argument("--min-words", type=int, default=8)
    ap.add_argument("--max-words", type=int, default=12)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import torch
    from genlm.control import AWRS, EOS, BoolFSA, PromptedLLM, direct_token_sampler
    from genlm.control.potential.built_in.llm import TokenMappings

    torch.set_num_threads(os.cpu_count() or 1)
    text = open(args.prompt_file).read()
    if args.mode == "shipped":
        llm = PromptedLLM.from_name(args.model_dir, backend="hf")
    else:
        llm = PromptedLLM.from_name(args.model_dir, backend="hf", batch_size=args.particles, timeout=0.001,
                                    hf_opts={"torch_dtype": getattr(torch, args.dtype)})
    lm = llm.model  # genlm.backend's AsyncTransformer
    tokenizer = lm.tokenizer

    if args.task == "fixed":
        class NoEOS(PromptedLLM):
            """A PromptedLLM with no EOS token. genlm-control 0.4.1 builds its EOS index tensor
            with `torch.tensor(eos_idxs)`, which is a float tensor when the list is empty and then
            fails as an index; these are the same tensors, typed."""

            def _eos_index_tensors(self, device):
                if getattr(self, "_no_eos_device", None) != device:
                    self._eos_idxs_tensor = torch.empty(0, dtype=torch.long, device=device)
                    self._non_eos_indices = torch.arange(len(self.token_maps.decode), device=device)
                    self._no_eos_device = device
                return self._eos_idxs_tensor, self._non_eos_indices

        prompt_ids = tokenizer.encode(text)
        target = NoEOS(lm, prompt_ids=prompt_ids,
                       token_maps=TokenMappings.create(decode=lm.byte_vocab, eos_byte_strings=[]))
        sampler = direct_token_sampler(target)

        def run(n, steps):
            return sampler.smc(n_particles=n, ess_threshold=args.ess_threshold, max_tokens=steps + 1,
                               terminate_when=lambda context: len(context) >= steps)
    else:
        request = (f"Describe the scene below in one sentence of {args.min_words} to {args.max_words} words, "
                   f"ending with a period.\n\n{text}")
        prompt_ids = tokenizer.apply_chat_template([{"role": "user", "content": request}],
                                                   tokenize=True, add_generation_prompt=True)
        if not isinstance(prompt_ids, list):  # transformers 5 may answer with a BatchEncoding
            prompt_ids = list(prompt_ids["input_ids"])
        llm.prompt_ids = prompt_ids
        fsa = BoolFSA.from_regex(word_regex(args.min_words, args.max_words)).coerce(llm, f=b"".join)
        sampler = AWRS(llm, fsa)

        def run(n, steps):
            return sampler.smc(n_particles=n, ess_threshold=args.ess_threshold, max_tokens=steps)

    def prepare():
        lm.clear_cache()  # nothing from the warm-up is served from the trie in the timed run
        if args.mode == "best":
            lm.cache_kv(prompt_ids)

    prepare()
    asyncio.run(run(2, 2))  # warm-up: first calls allocate
    prepare()
    started = time.perf_counter()
    sequences = asyncio.run(run(args.particles, args.steps))
    wall = time.perf_counter() - started

    tokens = sum(len(c) - (1 if c and c[-1] is EOS else 0) for c in sequences.contexts)
    row = {"mode": args.mode, "task": args.task, "particles": args.particles, "steps": args.steps,
           "dtype": str(next(lm.model.parameters()).dtype).removeprefix("torch."),
           "batch_size": lm.batch_size, "tokens": tokens, "seconds": wall, "wall_s": wall,
           "tokens_per_s": tokens / wall, "ess": float(sequences.ess)}
    if args.task == "fixed":
        row["lengths"] = sorted({len(c) - 1 for c in sequences.contexts if c and c[-1] is EOS})
        row["all_ended"] = all(c and c[-1] is EOS for c in sequences.contexts)
    else:
        answers = []
        for c in sequences.contexts:
            ended = bool(c) and c[-1] is EOS
            try:  # an unfinished particle has no answer
                answers.append(b"".join(c[:-1]).decode("utf-8") if ended else None)
            except UnicodeDecodeError:
                answers.append(None)
        ok = [satisfies(a, args.min_words, args.max_words) for a in answers]
        weights = np.asarray(sequences.normalized_weights, dtype=float)
        posterior: dict[str, float] = {}
        for a, w in zip(answers, weights):
            if a is not None and w > 0:
                posterior[a] = posterior.get(a, 0.0) + float(w)
        top = max(posterior, key=posterior.get) if posterior else None
        row.update({"regex": word_regex(args.min_words, args.max_words),
                    "valid_share": sum(ok) / len(ok), "valid_weight": float(sum(w for w, k in zip(weights, ok) if k)),
                    "alive_share": float(np.mean(np.isfinite(sequences.log_weights))),
                    "top_answer": top, "top_answer_valid": satisfies(top, args.min_words, args.max_words),
                    "top_answer_weight": posterior.get(top, 0.0) if top else 0.0})
    print(json.dumps(row))


if __name__ == "__main__":
    main()
