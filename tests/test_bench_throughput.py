"""`council bench throughput` and `council bench trace` in small: a tiny random Llama, a few
particles and steps; every field of the JSON present and plausible (the figures themselves are
the benches' business). llamppl runs when its environment is installed
(scripts/install_llamppl.sh); otherwise the report says it was skipped and why."""

import math

import pytest

from bench import throughput

pytestmark = pytest.mark.slow


def test_a_quick_throughput_bench_reports_every_field(ray_local, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COUNCIL_CACHE", str(tmp_path / "cache"))
    report = throughput.run(tmp_path / "t.json", particles=4, steps=4, llamppl_modes=("best",),
                            model=tiny_model_dir, timeout_s=300, report_path=tmp_path / "report.md",
                            repeats=2)
    assert report["raw_tokens_per_s"] > 0 and report["repeats"] == 2
    assert set(report["smc"]) == {"1", "2"}
    for run in report["smc"].values():
        assert run["tokens"] == 16 and run["tokens_per_s"] > 0 and run["rounds"] == 4
        assert len(run["runs_tokens_per_s"]) == 2 and len(run["raw_runs_tokens_per_s"]) == 2
        assert min(run["runs_tokens_per_s"]) <= run["tokens_per_s"] <= max(run["runs_tokens_per_s"])
    assert report["ratios"]["council_1_vs_raw"] > 0 and report["ratios"]["council_2_vs_raw"] > 0
    if throughput.llamppl_python() is None:
        assert "install_llamppl.sh" in report["llamppl"]["skipped"]
    else:
        best = report["llamppl"]["best"]
        assert "error" not in best, best
        assert best["tokens"] == 16 and best["tokens_per_s"] > 0 and best["batch_size"] == 4
        assert len(best["runs_tokens_per_s"]) == 2  # one run per round, alternating with Council's
        assert math.isfinite(report["ratios"]["council_1_vs_llamppl_best"])
    assert (tmp_path / "t.json").stat().st_size > 100
    assert "| Council SMC, 2 replica(s) |" in (tmp_path / "report.md").read_text()


def test_an_smc_trace_picture(tiny_model, smollm2_tokenizer, collie_tasks, tmp_path):
    import json

    from actors.engines.torch_engine import TorchEngine
    from bench.trace import run as run_trace
    from cluster.config import EngineConfig

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(t) + "\n" for t in collie_tasks if t["id"] == "wiki_c05/0"))
    engine = TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32"))
    summary = run_trace("wiki_c05/0", tmp_path / "trace.png", particles=4, tasks_path=tasks, engine=engine,
                        json_path=tmp_path / "trace.json", report_path=tmp_path / "report.md")
    assert summary["rounds"] == len(summary["ess"]) > 0 and 0 <= summary["resampled_rounds"] <= summary["rounds"]
    assert all(0 < e <= 4.0001 for e in summary["ess"])
    assert (tmp_path / "trace.png").stat().st_size > 1000
    assert "![trace](trace.png)" in (tmp_path / "report.md").read_text()
    with pytest.raises(ValueError, match="no task"):
        run_trace("wiki_c05/999999", tmp_path / "x.png", tasks_path=tasks, engine=engine)


def test_the_scaling_simulation_follows_the_schedulers_rules():
    from bench.scaling import Calibration, rebalance, simulate, step_time

    flat = {1: 0.010, 64: 0.010}  # a GPU-like engine: a step costs the same at any batch
    cal = Calibration(step_s=flat, step_s_half=flat, call_s=0.001, scheduler_s_per_particle=1e-6,
                      resample_s_per_particle=2e-6, migrate_s_per_particle=5e-5, prefill_s_per_token=1e-5)
    assert step_time(flat, 128, 64) == pytest.approx(0.020)  # two forwards above max_batch
    assert step_time({1: 1.0, 2: 2.0}, 4, 64) == pytest.approx(4.0)  # linear past the last point
    still = simulate(cal, 4, 256, rounds=16, resample_rate=0.0)
    assert still["share_migration"] == 0 and still["share_resampling"] == 0
    one, many = simulate(cal, 1, 1024, 32, 0.3), simulate(cal, 16, 1024, 32, 0.3)
    assert 1 < many["tokens_per_s"] / one["tokens_per_s"] <= 16  # fewer forwards each, never superlinear
    assert many["migrations_per_round"] > 0 and one["migrations_per_round"] == 0
    assert abs(sum(v for k, v in many.items() if k.startswith("share_")) - 1) < 1e-9
    moves = rebalance([10, 2, 6], imbalance=2)
    after = [10, 2, 6]
    for (src, dst), n in moves.items():
        after[src] -= n
        after[dst] += n
    assert max(after) - min(after) <= 2 and sum(after) == 18


def test_a_quick_scaling_bench_reports_every_field(ray_local, tiny_model_dir, tmp_path):
    from bench.scaling import run as run_scaling

    report = run_scaling(tmp_path / "s.json", tmp_path / "s.png", particles=4, steps=4,
                         replicas=(1, 2, 4), sizes=(16,), model=tiny_model_dir, report_path=tmp_path / "r.md")
    cal = report["calibration"]
    assert all(v > 0 for v in cal["step_s"].values()) and cal["call_s"] >= 0
    assert cal["migrate_s_per_particle"] > 0 and cal["prefill_s_per_token"] > 0
    assert set(report["checks"]["measured"]) == {"1", "2"} and report["checks"]["predicted"]["1"] > 0
    rows = report["curves"]["16"]
    assert [r["replicas"] for r in rows] == [1, 2, 4] and rows[0]["efficiency"] == pytest.approx(1.0)
    assert all(r["tokens_per_s"] > 0 and 0 <= r["share_migration"] < 1 for r in rows)
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert "Scaling (simulated)" in (tmp_path / "r.md").read_text() and "s.png" in (tmp_path / "r.md").read_text()


def test_a_quick_forward_bench_compares_the_three_decode_variants(tiny_model_dir, tmp_path):
    from bench import forward

    report = forward.run(tmp_path / "f.json", batch=4, steps=3, dtype="float32", repeats=2, model=tiny_model_dir,
                         prompts=(20, 90))
    assert set(report["prompts"]) == {"20", "90"}
    for measured in report["prompts"].values():
        assert set(measured["ms_per_step"]) == {"plain", "packed", "packed+shared"}
        assert all(v > 0 for v in measured["ms_per_step"].values())
        assert all(len(runs) == 2 for runs in measured["runs_ms"].values())
        assert measured["speedup_vs_plain"]["plain"] == 1.0
        # float32: every variant computes the same log-probs (only the summation order differs)
        assert max(measured["max_abs_logprob_diff_vs_plain"].values()) < 1e-4
        # ... and each is, like Hugging Face's own forward, the float32 model's
        far = measured["logprob_distance_from_float32"]
        assert set(far) == {"plain", "packed", "packed+shared", "hugging_face"}
        assert all(d["max"] < 1e-4 and 0 <= d["expected"] <= d["max"] for d in far.values())
    assert (tmp_path / "f.json").stat().st_size > 100


def test_a_quick_concurrency_bench_reports_every_mode(tiny_model_dir, tmp_path):
    from bench import concurrency

    report = concurrency.run(tmp_path / "c.json", particles=8, steps=4, repeats=2, counts=(2,),
                            model=tiny_model_dir)
    modes = report["modes"]
    assert set(modes) == {"1 request", "2 requests", "2 requests, gap rule only"}
    for row in modes.values():
        assert len(row["runs_tokens_per_s"]) == 2 and row["tokens_per_s"] > 0 and 0 < row["mean_batch"] <= 8
    assert modes["1 request"]["vs_one_request"] == 1.0
    assert (tmp_path / "c.json").stat().st_size > 100
