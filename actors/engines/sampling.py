"""Token sampling from a full-vocabulary log-prob vector, and the generate loop built on it.

Any engine that can score (`next_token_logprobs`) can generate this way; every step of every
concurrent generation then joins the engine's autobatch like any particle would.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Sequence

import numpy as np

from actors.engines.base import GenerateRequest, GenerateResult


def sample_token(
    logprobs: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator
) -> int:
    if temperature <= 0.0:
        return int(np.argmax(logprobs))
    scaled = logprobs.astype(np.float64) / temperature
    probs = np.exp(scaled - scaled.max())
    if top_p < 1.0:
        # Nucleus: keep the most likely tokens until their mass reaches top_p. argpartition
        # would be faster for tiny top_p, but a full sort is exact and rarely on a hot path.
        order = np.argsort(-probs)
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, top_p * cumulative[-1])) + 1]
        kept = np.zeros_like(probs)
        kept[keep] = probs[keep]
        probs = kept
    cdf = np.cumsum(probs)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))


async def generate_by_scoring(
    score: Callable[[Sequence[int]], Awaitable[np.ndarray]],
    prompt_ids: list[int],
    request: GenerateRequest,
    eos_token_ids: frozenset[int],
    decode: Callable[[list[int]], str],
    rng: np.random.Generator,
) -> GenerateResult:
    ids = list(prompt_ids)
    out: list[int] = []
    logps: list[float] = []
    finish = "length"
    stopped_text = None
    for _ in range(request.max_tokens):
        lp = await score(ids)
        tok = sample_token(lp, request.temperature, request.top_p, rng)
        if tok in eos_token_ids:
            finish = "stop"
            break
        ids.append(tok)
        out.append(tok)
        logps.append(float(lp[tok]))
        if request.stop:
            text = decode(out)
            cut = min((i for i in (text.find(s) for s in request.stop) if i >= 0), default=-1)
            if cut >= 0:
                stopped_text, finish = text[:cut], "stop"
                break
    text = stopped_text if stopped_text is not None else decode(out)
    return GenerateResult(
        text=text,
        token_ids=out,
        token_logprobs=logps,
        finish_reason=finish,
        prompt_tokens=len(prompt_ids),
        completion_tokens=len(out),
    )
