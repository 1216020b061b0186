"""The exact constrained distribution of a small grammar, and what masked decoding samples.

For a grammar whose language is finite and small (a few choices, a short regex, an enum
schema) every token path the grammar allows can be enumerated with the real model:

- the target, `exact`: p(x | x in L) ∝ Σ over token paths of x of Π p(token) · p(EOS | x),
  the model's own distribution given the grammar (what SMC with the grammar potential
  targets: `LMContext.grammar` + `observe`);
- `masked`: q(x) = Σ over paths of Π p(token) / p(allowed), what masked (engine-style,
  "guided") decoding samples: each step renormalised over the allowed tokens, no weights.

    exact, masked = await enumerate_grammar(engine, prompt_ids, spec)
    kl(exact, masked), total_variation(estimate, exact)
"""

from __future__ import annotations

import math

import numpy as np

from planner.grammar import GrammarSpec, Matcher, llg_tokenizer
from planner.program import logsumexp

MAX_PATHS = 5_000


async def enumerate_grammar(engine, prompt_ids: list[int], spec: GrammarSpec,
                            max_tokens: int = 24) -> tuple[dict[str, float], dict[str, float]]:
    """(exact, masked): the two distributions over the texts of `spec`'s language."""
    tokenizer = engine.tokenizer
    tok = llg_tokenizer(tokenizer.backend_tokenizer, engine.vocab_size, engine.eos_token_ids)
    eos = set(engine.eos_token_ids)
    log_p: dict[str, list[float]] = {}
    log_q: dict[str, list[float]] = {}
    frontier = [([], 0.0, 0.0)]  # (generated ids, log p, log q)
    paths = 0
    while frontier:
        lps = await engine.batch_next_token_logprobs([prompt_ids + ids for ids, _, _ in frontier])
        grown = []
        for (ids, lp_path, lq_path), lp in zip(frontier, lps):
            lp = np.asarray(lp, dtype=np.float64)
            allowed = Matcher(spec, tok, 0).mask(ids, len(lp))
            mass = logsumexp(lp[allowed])
            for t in np.nonzero(allowed)[0]:
                t = int(t)
                if t in eos:
                    text = tokenizer.decode(ids, skip_special_tokens=True)
                    log_p.setdefault(text, []).append(lp_path + lp[t])
                    log_q.setdefault(text, []).append(lq_path + lp[t] - mass)
                    paths += 1
                elif len(ids) < max_tokens:
                    grown.append((ids + [t], lp_path + lp[t], lq_path + lp[t] - mass))
            if paths + len(grown) > MAX_PATHS:
                raise ValueError(f"the grammar has over {MAX_PATHS} token paths: too many to enumerate")
        frontier = grown
    return _normalised(log_p), _normalised(log_q)


def _normalised(logs: dict[str, list[float]]) -> dict[str, float]:
    totals = {text: logsumexp(v) for text, v in logs.items()}
    z = logsumexp(list(totals.values()))
    return {text: math.exp(v - z) for text, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def kl(p: dict[str, float], q: dict[str, float]) -> float:
    """KL(p || q) in nats (inf if q misses some of p's mass)."""
    out = 0.0
    for x, px in p.items():
        if px > 0:
            qx = q.get(x, 0.0)
            if qx <= 0:
                return math.inf
            out += px * math.log(px / qx)
    return out


def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    return 0.5 * sum(abs(p.get(x, 0.0) - q.get(x, 0.0)) for x in set(p) | set(q))
