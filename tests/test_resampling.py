import numpy as np
import pytest

from cluster.resampling import (
    RESAMPLERS,
    effective_sample_size,
    normalize_log_weights,
    resample,
)

WEIGHTS = np.array([0.5, 0.2, 0.15, 0.1, 0.04, 0.01])


@pytest.mark.parametrize("method", sorted(RESAMPLERS))
def test_expected_offspring_is_n_times_weight(method):
    rng = np.random.default_rng(0)
    n, draws = len(WEIGHTS), 20000
    counts = np.zeros(len(WEIGHTS))
    for _ in range(draws):
        ancestors = resample(method, WEIGHTS, n, rng)
        assert len(ancestors) == n  # N is conserved
        counts += np.bincount(ancestors, minlength=len(WEIGHTS))
    np.testing.assert_allclose(counts / draws, n * WEIGHTS, atol=0.03)


@pytest.mark.parametrize("method", ["stratified", "systematic", "residual"])
def test_low_variance_schemes_beat_multinomial(method):
    rng = np.random.default_rng(1)

    def variance(m):
        c = [np.bincount(resample(m, WEIGHTS, 6, rng), minlength=6)[0] for _ in range(5000)]
        return np.var(c)

    assert variance(method) < variance("multinomial")


def test_systematic_keeps_deterministic_shares():
    rng = np.random.default_rng(2)
    for _ in range(100):
        counts = np.bincount(resample("systematic", np.array([0.5, 0.5]), 4, rng), minlength=2)
        assert counts.tolist() == [2, 2]


def test_ess_and_normalisation():
    assert effective_sample_size(np.zeros(8)) == pytest.approx(8.0)
    assert effective_sample_size(np.array([0.0, -np.inf, -np.inf])) == pytest.approx(1.0)
    assert effective_sample_size(np.full(3, -np.inf)) == 0.0
    np.testing.assert_allclose(normalize_log_weights(np.log([1.0, 3.0])), [0.25, 0.75])


def test_bad_input_is_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown resampler"):
        resample("magic", WEIGHTS, 6, rng)
    with pytest.raises(ValueError, match="summing to 1"):
        resample("systematic", np.array([0.5, 0.2]), 2, rng)
