"""TorchEngine: the embedded follower engine (CPU or one GPU), built for many particles.

Three pieces, one per module: `KVPrefixTrie` decides which tokens must be computed and where
their K/V go, `SlotKVModel` computes them over the shared slot pool, `AutoBatcher` merges the
concurrent callers. This module plans each batch:

1. Sequences are taken longest first and matched against the trie; the unmatched tail of
   each becomes a *row* of new tokens. A sequence whose end lies inside another row's new
   tokens (a shorter copy of the same text) adds no row and reads that row's output; one that
   is fully cached is answered from the node's stored distribution, or recomputes only its
   last token.
2. Rows with several new tokens (prompts) run first, then the one-token rows (decode steps),
   which may read K/V the first forward wrote. Longest-first order guarantees a row only ever
   reads slots of rows at least as long, so this order is always enough.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Sequence

import numpy as np
import torch

from actors.engines.autobatch import AutoBatcher
from actors.engines.base import EngineStats, GenerateRequest, GenerateResult, chat_stops, encode_prompt
from actors.engines.kv_trie import KVCacheFullError, KVPrefixTrie, TrieNode
from actors.engines.model_source import dense_copy_dir, resolve_model, save_dense_copy
from actors.engines.sampling import SampleSpec, sample_rows
from actors.engines.slot_model import Row, SlotKVModel
from actors.engines.torch_thread import on_torch_thread, torch_executor
from cluster.config import EngineConfig

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class SequenceError(ValueError):
    """A caller sent a token sequence the engine cannot score."""


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16: where bf16 matmuls beat float32 on CPU (~1.5x for SmolLM2 decode)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("amx_bf16", "avx512_bf16"))


def pick_device(config: EngineConfig) -> str:
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if config.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("engine.device is 'cuda' but torch sees no CUDA device")
    return config.device


def pick_dtype(config: EngineConfig, device: str) -> torch.dtype:
    if config.dtype != "auto":
        return DTYPES[config.dtype]
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def load_hf_model(config: EngineConfig, device: str, dtype: torch.dtype):
    """Model and tokenizer from local files only (HF_HUB_OFFLINE is forced)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    _quiet_gguf_progress()

    source = resolve_model(config.model, config.gguf_file)
    dense = dense_copy_dir(source, str(dtype).removeprefix("torch."))
    if dense is not None and (dense / "config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(dense)
        model = AutoModelForCausalLM.from_pretrained(dense, dtype=dtype)
        return model.to(device).eval(), tokenizer, source.name
    kwargs = source.from_pretrained_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(source.directory, **kwargs)
    if source.gguf_file:
        kwargs.update(_dense_gguf_kwargs())
    model = AutoModelForCausalLM.from_pretrained(source.directory, dtype=dtype, **kwargs)
    if dense is not None and not save_dense_copy(dense, model, tokenizer):
        log.warning("could not keep a dense copy of %s in %s; every start dequantizes it", source.name, dense)
    return model.to(device).eval(), tokenizer, source.name


def _quiet_gguf_progress() -> None:
    # The GGUF dequantizer draws a plain tqdm bar that ignores transformers' progress-bar
    # switch: 272 lines in every replica's log. Silence that one bar only.
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None and not isinstance(bar, functools.partial):
        gguf_utils.tqdm = functools.partial(bar, disable=True)


def _dense_gguf_kwargs() -> dict:
    # Newer transformers can keep GGUF weights packed and compute in float32 through its
    # `kernels` package; our bf16 path wants plain dense weights, so ask for that explicitly.
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always dequantize
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


class TorchEngine:
    kind = "torch"

    def __init__(self, model, tokenizer, config: EngineConfig, name: str = "custom"):
        self.config = config
        self.name = name
        self._tokenizer = tokenizer
        if config.threads and next(model.parameters()).device.type == "cpu":
            on_torch_thread(torch.set_num_threads, config.threads)  # a per-thread setting
        torch.manual_seed(config.seed)
        self._runner = on_torch_thread(SlotKVModel, model, config.kv_cache_tokens)
        self._trie = KVPrefixTrie(config.kv_cache_tokens, config.logprob_cache_entries)
        self._batcher = AutoBatcher(
            self._score_batch, config.max_batch_size, config.batch_wait_ms, torch_executor()
        )
        eos = set()
        for source in (getattr(model.generation_config, "eos_token_id", None),
                       getattr(tokenizer, "eos_token_id", None) if tokenizer else None):
            if source is not None:
                eos.update(source if isinstance(source, (list, tuple)) else [source])
        self._eos = frozenset(int(t) for t in eos)
        self._generations = 0
        self._generated_tokens = 0
        self._requests = 0
        self._tokens_computed = 0
        self._tokens_cached = 0
        self._lp_hits = 0

    @classmethod
    def load(cls, config: EngineConfig) -> "TorchEngine":
        device = pick_device(config)
        dtype = pick_dtype(config, device)
        model, tokenizer, name = on_torch_thread(load_hf_model, config, device, dtype)
        log.info("loaded %s on %s in %s", name, device, dtype)
        return cls(model, tokenizer, config, name=name)

    # -- protocol ---------------------------------------------------------------------------
    @property
    def tokenizer(self):
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return self._runner.vocab_size

    @property
    def eos_token_ids(self) -> frozenset[int]:
        return self._eos

    def encode_prompt(self, request: GenerateRequest) -> list[int]:
        if self._tokenizer is None:
            raise RuntimeError("this engine was built without a tokenizer")
        return encode_prompt(self._tokenizer, request)

    async def next_token_logprobs(self, token_ids: Sequence[int]) -> np.ndarray:
        # A read-only view of the cached distribution: a caller that edits it in place gets an
        # error instead of changing what the next caller reads. Not a copy: the particle host
        # copies every row into its worker's slab anyway, and 32 particles' 49k-float copies
        # were a per-round cost on the event loop.
        view = (await self._batcher.submit((tuple(token_ids), None))).numpy()
        view.flags.writeable = False
        return view

    async def batch_next_token_logprobs(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        return list(await asyncio.gather(*(self.next_token_logprobs(ids) for ids in batch)))

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Sample step by step; each step joins the autobatch and is sampled inside it."""
        prompt_ids = self.encode_prompt(request)
        self._generations += 1
        seed = request.seed if request.seed is not None else (self.config.seed, self._generations)
        rng = np.random.default_rng(seed)
        ids, out, logps, entropies = list(prompt_ids), [], [], []
        finish, text = "length", None
        stops = chat_stops(self._tokenizer, request)
        for _ in range(request.max_tokens):
            spec = SampleSpec(request.temperature, request.top_p, rng.random())
            tok, logp, entropy = await self._batcher.submit((tuple(ids), spec))
            if tok in self._eos:
                finish = "stop"
                break
            ids.append(tok)
            out.append(tok)
            logps.append(logp)
            entropies.append(entropy)
            if stops:
                decoded = self._decode(out)
                cut = min((i for i in (decoded.find(s) for s in stops) if i >= 0), default=-1)
                if cut >= 0:
                    finish, text = "stop", decoded[:cut]
                    break
        self._generated_tokens += len(out)
        return GenerateResult(
            text=self._decode(out) if text is None else text,
            token_ids=out,
            token_logprobs=logps,
            token_entropies=entropies,
            finish_reason=finish,
            prompt_tokens=len(prompt_ids),
            completion_tokens=len(out),
        )

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)

    def stats(self) -> EngineStats:
        asked = self._tokens_cached + self._tokens_computed
        b = self._batcher
        return EngineStats(
            kind=self.kind,
            model=self.name,
            device=str(self._runner.device),
            dtype=str(self._runner.dtype).removeprefix("torch."),
            requests=self._requests,
            batches=b.batches,
            mean_batch_size=b.items / b.batches if b.batches else 0.0,
            busy_s=b.busy_s,
            queue_depth=b.queue_depth,
            tokens_computed=self._tokens_computed,
            tokens_cached=self._tokens_cached,
            prefix_hit_rate=self._tokens_cached / asked if asked else 0.0,
            logprob_cache_hits=self._lp_hits,
            kv_slots_used=self._trie.used,
            kv_slots_total=self._trie.capacity,
            evictions=self._trie.evictions,
            generated_tokens=self._generated_tokens,
        )

    async def close(self) -> None:
        await self._batcher.close()

    # -- batch planning (runs in the engine thread) -----------------------------------------
    def _check(self, seq: tuple) -> None:
        if not seq:
            raise SequenceError("cannot score an empty token sequence")
        if len(seq) > self.config.max_model_len:
            raise SequenceError(
                f"sequence of {len(seq)} tokens exceeds engine.max_model_len "
                f"({self.config.max_model_len})"
            )
        if len(seq) > self._trie.capacity:
            raise SequenceError(
                f"sequence of {len(seq)} tokens exceeds the KV cache "
                f"({self._trie.capacity} slots); raise engine.kv_cache_tokens"
            )
        if min(seq) < 0 or max(seq) >= self.vocab_size:
            raise SequenceError(f"token ids must lie in [0, {self.vocab_size})")

    def _score_batch(self, items: list[tuple[tuple, SampleSpec | None]]) -> list:
        """Log-probs for every item; for items carrying a SampleSpec, the sampled token."""
        seqs = [seq for seq, _ in items]
        results: list = [None] * len(seqs)
        todo = []
        for i, seq in enumerate(seqs):
            try:
                self._check(seq)
                todo.append(i)
            except SequenceError as exc:
                results[i] = exc
        self._requests += len(seqs)
        if todo:
            self._score_valid(seqs, sorted(todo, key=lambda i: -len(seqs[i])), results)
        sampling = [i for i in todo if items[i][1] is not None]
        if sampling:
            rows = torch.stack([results[i] for i in sampling])
            tokens, logps = sample_rows(rows, [items[i][1] for i in sampling])
            # The model's own uncertainty at each step (temperature 1), for cascade confidence.
            entropies = -(rows.exp() * rows).nan_to_num(0.0).sum(-1)
            for i, tok, logp, ent in zip(sampling, tokens.tolist(), logps.tolist(), entropies.tolist()):
                results[i] = (tok, logp, ent)
        return results

    def _score_valid(self, seqs: list[tuple], order: list[int], results: list) -> None:
        trie = self._trie
        trie.begin_batch()
        matched = [trie.match(seqs[i]) for i in order]  # pins every reusable prefix first
        need = sum(len(seqs[i]) - node.depth for i, node in zip(order, matched))
        if need > trie.available():
            if len(order) == 1:  # _check bounds a single sequence, so this is a bug guard
                raise KVCacheFullError(f"cannot fit a sequence of {len(seqs[order[0]])} tokens")
            half = len(order) // 2  # too big for the cache at once: split, keep order
            self._score_valid(seqs, order[:half], results)
            self._score_valid(seqs, order[half:], results)
            return

        rows: list[Row] = []
        producer: dict[TrieNode, tuple[int, int]] = {}  # node -> (row, query) computing it
        wants: list[tuple[int, TrieNode, tuple[int, int]]] = []  # (request, last node, source)
        for i, start in zip(order, matched):
            seq = seqs[i]
            node = trie.match(seq, start)  # earlier rows of this batch may have extended it
            self._tokens_cached += node.depth
            if node.depth < len(seq):
                new = trie.extend(node, seq[node.depth :])
                rows.append(Row(trie.path_slots(node), list(seq[node.depth :]), [n.slot for n in new]))
                for q, n in enumerate(new):
                    producer[n] = (len(rows) - 1, q)
                node = new[-1]
            elif node in producer:
                pass
            elif (hit := trie.cached_logprobs(node)) is not None:
                results[i] = hit
                self._lp_hits += 1
                continue
            else:  # cached K/V but no stored distribution: recompute the last token only
                rows.append(Row(trie.path_slots(node.parent), [seq[-1]], [node.slot]))
                producer[node] = (len(rows) - 1, 0)
                self._tokens_cached -= 1
            wants.append((i, node, producer[node]))
        if not rows:
            return
        self._tokens_computed += sum(len(r.new_tokens) for r in rows)

        for _, _, (r, q) in wants:
            if q not in rows[r].wanted:
                rows[r].wanted.append(q)
        out: dict[tuple[int, int], torch.Tensor] = {}
        prefill = [k for k, r in enumerate(rows) if len(r.new_tokens) > 1]
        decode = [k for k, r in enumerate(rows) if len(r.new_tokens) == 1]
        for group in (prefill, decode):
            if not group:
                continue
            logprobs = self._runner.forward([rows[k] for k in group])
            flat = iter(logprobs)
            for k in group:
                for q in rows[k].wanted:
                    # A copy, so a cached distribution does not pin the whole batch tensor.
                    out[(k, q)] = next(flat).clone()
        for i, node, source in wants:
            results[i] = out[source]
            trie.store_logprobs(node, out[source])
