"""Resampling schemes for SMC: given normalised weights, draw N ancestor indices.

All four are unbiased (each particle's expected offspring count is N·w_i); they differ in
variance: multinomial > stratified >= systematic, and residual keeps floor(N·w_i) copies
deterministically. Systematic is the default (lowest variance, one uniform draw).

    ancestors = resample("systematic", weights, n=len(weights), rng=np.random.default_rng(0))
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np

Resampler = Literal["multinomial", "stratified", "systematic", "residual"]


def _from_uniforms(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Ancestor for each sorted uniform in [0, 1): the inverse CDF of the weights."""
    cdf = np.cumsum(weights)
    cdf[-1] = 1.0  # guard the float tail so no draw falls past the last particle
    return np.searchsorted(cdf, u, side="right")


def multinomial(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return _from_uniforms(weights, np.sort(rng.random(n)))


def stratified(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return _from_uniforms(weights, (np.arange(n) + rng.random(n)) / n)


def systematic(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return _from_uniforms(weights, (np.arange(n) + rng.random()) / n)


def residual(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    copies = np.floor(n * weights).astype(np.int64)
    kept = np.repeat(np.arange(len(weights)), copies)
    rest = n - int(copies.sum())
    if rest == 0:
        return kept
    leftover = n * weights - copies
    extra = multinomial(leftover / leftover.sum(), rest, rng)
    return np.sort(np.concatenate([kept, extra]))


RESAMPLERS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "multinomial": multinomial,
    "stratified": stratified,
    "systematic": systematic,
    "residual": residual,
}


def normalize_log_weights(log_weights: np.ndarray) -> np.ndarray:
    """exp-normalise; all -inf (every particle dead) gives all zeros."""
    lw = np.asarray(log_weights, dtype=np.float64)
    top = lw.max(initial=-np.inf)
    if not np.isfinite(top):
        return np.zeros_like(lw)
    w = np.exp(lw - top)
    return w / w.sum()


def effective_sample_size(log_weights: np.ndarray) -> float:
    w = normalize_log_weights(log_weights)
    total = float((w**2).sum())
    return 1.0 / total if total > 0 else 0.0


def resample(
    method: str, weights: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n ancestor indices (sorted) drawn by `method` from normalised `weights`."""
    try:
        draw = RESAMPLERS[method]
    except KeyError:
        raise ValueError(f"unknown resampler {method!r}; choose from {sorted(RESAMPLERS)}") from None
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.isclose(w.sum(), 1.0) or (w < 0).any():
        raise ValueError("weights must be a non-empty, non-negative vector summing to 1")
    return draw(w, n, rng)
