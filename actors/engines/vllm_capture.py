"""Batched full-vocabulary scoring on vLLM: the log-softmax rows of one engine step, captured
inside vLLM's sampler and handed to the caller through shared memory.

Why: asking vLLM for `logprobs=-1` makes its output processor build a Python dict of one
`Logprob` object per vocabulary entry (49k for SmolLM2) per request per token, which costs
far more than the forward pass. Here a vLLM v1 batch-level logits processor sees the whole
step's logits, computes the log-softmax of the scoring rows in one op and copies them in one
indexed write; scoring requests ask vLLM for no log-probs at all.

Why shared memory: `AsyncLLM` always runs the engine core in another process (vLLM raises
`NotImplementedError` for an in-process asyncio engine core), and on CPU the model runner is
in a third (the `mp` executor), so a dict in the caller's process cannot be reached from the
processor. The caller (`VLLMEngine`) owns a `ScoreSlab`, a file in /dev/shm that every
process maps; each scoring request names its slab, slot and ticket in
`SamplingParams.extra_args`. The processor writes the row and stamps the slot with the ticket
before the step's output leaves the worker, so by the time the caller sees its one-token
request finish, the row is in place; the ticket tells it the row is its own.

Slab layout: header int64[4] = (slots, width, steps with scoring rows, rows written);
stamps int64[slots, 2] = (ticket, step); rows float32[slots, width].

This module imports vLLM and is only imported by `VLLMEngine.load` (and in vLLM's worker
process, which unpickles the processor class by reference).
"""

from __future__ import annotations

import atexit
import itertools
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

__all__ = ["EXTRA_ARGS_KEY", "CaptureLogprobs", "ScoreSlab", "ScoreTarget"]

EXTRA_ARGS_KEY = "council_score"
SLAB_PREFIX = "council-vllm-scores-"  # the only files a processor will map and write
_HEADER = 4  # int64 fields
_STAMP = 2   # int64 fields per slot


class ScoreTarget(BaseModel):
    """Where a scoring request's log-prob row goes: what rides in `SamplingParams.extra_args`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slab: str
    slot: int = Field(ge=0)
    ticket: int = Field(ge=1)

    @field_validator("slab")
    @classmethod
    def _is_a_slab(cls, path: str) -> str:
        # The processor memory-maps this path read-write: only a slab file an engine made
        # (by name) is accepted, whoever managed to put a target into a request.
        if not os.path.basename(path).startswith(SLAB_PREFIX) or os.path.islink(path):
            raise ValueError("not a Council score slab")
        return path

    @classmethod
    def of(cls, params: SamplingParams) -> "ScoreTarget | None":
        extra = params.extra_args or {}
        return cls.model_validate(extra[EXTRA_ARGS_KEY]) if EXTRA_ARGS_KEY in extra else None

    def extra_args(self) -> dict[str, Any]:
        return {EXTRA_ARGS_KEY: self.model_dump()}


@dataclass(frozen=True)
class ScoreSlab:
    """The shared rows of one engine: numpy views over one memory-mapped file."""

    path: str
    header: np.ndarray  # int64[4]
    stamps: np.ndarray  # int64[slots, 2]
    rows: np.ndarray    # float32[slots, width]

    @property
    def slots(self) -> int:
        return self.rows.shape[0]

    @property
    def width(self) -> int:
        return self.rows.shape[1]

    @staticmethod
    def nbytes(slots: int, width: int) -> int:
        return 8 * (_HEADER + _STAMP * slots) + 4 * slots * width

    @classmethod
    def create(cls, slots: int, width: int) -> "ScoreSlab":
        """A new slab file (in /dev/shm where there is one: RAM, not disk), zeroed."""
        directory = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix=SLAB_PREFIX, dir=directory)
        try:
            os.ftruncate(fd, cls.nbytes(slots, width))
        finally:
            os.close(fd)
        slab = cls._map(path, slots, width)
        slab.header[:2] = (slots, width)
        atexit.register(slab.unlink)  # the creator owns the file, also when it is not closed
        return slab

    @classmethod
    def attach(cls, path: str) -> "ScoreSlab":
        """The slab another process created (its shape read from the header)."""
        slots, width = (int(v) for v in np.fromfile(path, dtype=np.int64, count=2))
        return cls._map(path, slots, width)

    @classmethod
    def _map(cls, path: str, slots: int, width: int) -> "ScoreSlab":
        buf = np.memmap(path, dtype=np.uint8, mode="r+", shape=(cls.nbytes(slots, width),))
        rows_at = 8 * (_HEADER + _STAMP * slots)
        return cls(
            path=path,
            header=buf[: 8 * _HEADER].view(np.int64),
            stamps=buf[8 * _HEADER: rows_at].view(np.int64).reshape(slots, _STAMP),
            rows=buf[rows_at:].view(np.float32).reshape(slots, width),
        )

    # -- the caller's side ------------------------------------------------------------------

    def expect(self, target: ScoreTarget) -> None:
        """Clear the slot's stamp before its request is sent (slots are reused)."""
        self.stamps[target.slot] = 0

    def read(self, target: ScoreTarget, vocab: int) -> tuple[np.ndarray, int]:
        """A copy of the slot's row (padded with -inf to `vocab`, or cut to it) and the engine
        step that wrote it; raises when the row was not written for this request."""
        ticket, step = (int(v) for v in self.stamps[target.slot])
        if ticket != target.ticket:
            raise RuntimeError(
                "vLLM finished a scoring request but its log-probs were not captured; is the "
                "CaptureLogprobs logits processor loaded (vLLM's V1 model runner)?")
        row = np.full(vocab, -np.inf, dtype=np.float32)
        n = min(vocab, self.width)
        row[:n] = self.rows[target.slot, :n]
        return row, step

    def counters(self) -> tuple[int, int]:
        """(engine steps that captured rows, rows captured) since the engine started."""
        return int(self.header[2]), int(self.header[3])

    def unlink(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    # -- the worker's side ------------------------------------------------------------------

    def write(self, targets: list[ScoreTarget], rows: np.ndarray, step: int) -> None:
        """One step's rows for these targets; each slot's stamp after its row."""
        slots = [t.slot for t in targets]
        n = min(rows.shape[1], self.width)
        self.rows[slots, :n] = rows[:, :n]
        self.stamps[slots] = [(t.ticket, step) for t in targets]
        self.header[2] += 1
        self.header[3] += len(targets)


class CaptureLogprobs(LogitsProcessor):
    """Copies the raw log-softmax rows of scoring requests (those carrying a `ScoreTarget`)
    into their slab, once per engine step for all of them; changes no logits.

    Runs among the non-argmax-invariant processors, before penalties and temperature: for a
    request without allowed-token ids or bad words (scoring requests have neither) the logits
    are still the model's own, so the rows equal vLLM's `raw_logprobs` output. A request in a
    partial prefill chunk also gets a row that step; the step that completes its prompt
    overwrites it, and a one-token request is in no step after that.

    Under tensor parallelism every rank samples the same rows; only the first one writes.
    """

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        self._targets: dict[int, ScoreTarget] = {}  # persistent-batch index -> target
        self._slabs: dict[str, ScoreSlab] = {}
        self._steps = itertools.count(1)  # stamps start at 1: 0 means "not written"
        self._writes = _is_first_tensor_parallel_rank()

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        try:
            ScoreTarget.of(sampling_params)
        except Exception as exc:  # a malformed target fails the request, not the engine
            raise ValueError(f"bad {EXTRA_ARGS_KEY} in extra_args: {exc}") from exc

    def is_argmax_invariant(self) -> bool:
        # vLLM skips argmax-invariant processors on all-greedy steps; scoring requests are
        # greedy, so this one must count as argmax-variant to see every step.
        return False

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self._targets, batch_update, lambda params, _prompt, _out: ScoreTarget.of(params))

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self._targets or not self._writes:
            return logits
        index = sorted(i for i in self._targets if i < logits.shape[0])
        if not index:
            return logits
        step = next(self._steps)
        rows = logits[index].log_softmax(dim=-1, dtype=torch.float32).cpu().numpy()
        by_slab: dict[str, list[int]] = {}
        for k, i in enumerate(index):
            by_slab.setdefault(self._targets[i].slab, []).append(k)
        for path, ks in by_slab.items():
            self._slab(path).write([self._targets[index[k]] for k in ks], rows[ks], step)
        return logits

    def _slab(self, path: str) -> ScoreSlab:
        slab = self._slabs.get(path)
        if slab is None:
            slab = self._slabs[path] = ScoreSlab.attach(path)
        return slab


def _is_first_tensor_parallel_rank() -> bool:
    from vllm.distributed import parallel_state

    try:
        return parallel_state.get_tensor_model_parallel_rank() == 0
    except AssertionError:  # no parallel groups set up: the only worker
        return True
