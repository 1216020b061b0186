"""Batched token sampling from full-vocabulary log-probs (temperature, nucleus, greedy).

The torch engine samples every generating caller's token inside the batch, on the torch
thread, in one vectorised call: doing it per caller in numpy cost ~0.2 ms each on the event
loop, a serial 13 ms per step at 64 callers. Each caller still owns its randomness: it draws
its uniform `u` from its own seeded generator and sends it with the request, so a seeded
generation is reproducible whatever batch it lands in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SampleSpec:
    """How to pick the next token: `u` in [0, 1) is the caller's own uniform draw."""

    temperature: float
    top_p: float
    u: float


def sample_rows(logprobs: torch.Tensor, specs: list[SampleSpec]) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row of `logprobs` [S, V]; returns (token ids, their model log-probs).

    Temperature 0 is greedy. Nucleus keeps the most likely tokens until their mass reaches
    `top_p` (the token that crosses it included). The log-prob reported is the model's own,
    before temperature, as vLLM reports it.
    """
    temperature = torch.tensor([s.temperature for s in specs], dtype=torch.float32)
    top_p = torch.tensor([s.top_p for s in specs], dtype=torch.float32)
    u = torch.tensor([s.u for s in specs], dtype=torch.float64)
    greedy = temperature <= 0
    scaled = logprobs / torch.where(greedy, 1.0, temperature).unsqueeze(-1)
    probs = torch.softmax(scaled, dim=-1, dtype=torch.float64)
    if bool((top_p < 1.0).any()):
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(dim=-1) - sorted_p  # mass of strictly more likely tokens
        keep = before < top_p.to(torch.float64).unsqueeze(-1)
        probs = probs * torch.zeros_like(keep).scatter(-1, order, keep)
    cdf = probs.cumsum(dim=-1)
    target = (u * cdf[:, -1]).unsqueeze(-1)
    tokens = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    tokens = tokens.clamp_(max=logprobs.shape[-1] - 1)
    tokens = torch.where(greedy, logprobs.argmax(dim=-1), tokens)
    return tokens, logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
