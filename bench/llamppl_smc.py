"""llamppl's own `smc_standard` on the throughput bench's program, for `council bench throughput`.

Runs in llamppl's virtual environment (it pulls genlm-backend, numba, bitsandbytes…), so it
imports nothing from Council and prints one JSON object:

    /opt/llamppl-venv/bin/python bench/llamppl_smc.py --model-dir DIR --prompt-file F \\
        --particles 32 --steps 32 --mode best

Modes: `shipped` is `CachedCausalLM.from_pretrained(dir, backend="hf")` with its defaults (the
directory's dtype, float32; auto-batching up to 20 queries); `best` gives it a batch as wide
as the particle count, the bench's dtype, and the prompt's keys and values cached up front
(`lm.cache_kv`). The program samples `steps` tokens per particle; llamppl does not stop a
particle at EOS, so no mask is needed (Council's program masks EOS out, which costs it a
little, not llamppl).
"""

import argparse
import asyncio
import json
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--prompt-file", required=True)
    ap.add_argument("--particles", type=int, default=32)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--mode", choices=("shipped", "best"), default="best")
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from llamppl import CachedCausalLM, LMContext, Model, smc_standard

    torch.set_num_threads(os.cpu_count() or 1)
    prompt = open(args.prompt_file).read()
    if args.mode == "shipped":
        lm = CachedCausalLM.from_pretrained(args.model_dir, backend="hf")
    else:
        lm = CachedCausalLM.from_pretrained(args.model_dir, backend="hf", batch_size=args.particles,
                                            hf_opts={"torch_dtype": getattr(torch, args.dtype)})
        lm.cache_kv(lm.tokenizer.encode(prompt))

    class FixedLength(Model):
        def __init__(self, steps):
            super().__init__()
            self.context = LMContext(lm, prompt)
            self.steps, self.done = steps, 0

        async def step(self):
            await self.sample(self.context.next_token())
            self.done += 1
            if self.done >= self.steps:
                self.finish()

    asyncio.run(smc_standard(FixedLength(2), 4))  # warm-up: first calls allocate
    started = time.perf_counter()
    particles = asyncio.run(smc_standard(FixedLength(args.steps), args.particles, ess_threshold=0.5))
    wall = time.perf_counter() - started
    tokens = sum(p.done for p in particles)
    print(json.dumps({"mode": args.mode, "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall,
                      "dtype": str(next(lm.model.model.parameters()).dtype).removeprefix("torch."),
                      "batch_size": lm.model.batch_size, "particles": args.particles, "steps": args.steps}))


if __name__ == "__main__":
    main()
