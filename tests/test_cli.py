"""`council generate`, the first main job, run as a user runs it."""

import json

import pytest
from cli_runner import council

pytestmark = pytest.mark.slow


def test_generate_with_the_embedded_default():
    run = council(
        "generate", "The capital of France is", "--raw", "-n", "2", "--max-tokens", "4",
        "--temperature", "0", "--json",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 2
    assert all(r["text"].startswith(" Paris") and r["completion_tokens"] <= 4 for r in results)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--replicas", "0"], "pool.replicas"),
        (["--model", "/no/such/model"], "not found"),
        (["--dtype", "int4"], "engine.dtype"),
    ],
)
def test_bad_options_exit_2_with_a_message_and_no_traceback(args, message):
    run = council("generate", "hi", *args, timeout=120)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_eval_answers_judges_and_resumes(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        json.dumps({"id": "a", "prompt": "Write a sentence containing the word 'river'."}) + "\n"
        + json.dumps({"id": "b", "prompt": "Write a sentence with exactly 8 words."}) + "\n"
    )
    out = tmp_path / "out.jsonl"
    run = council("eval", "--tasks", str(tasks), "--out", str(out), "--particles", "4", timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert all(r["passed"] for r in rows), rows
    assert rows[0]["constraints"] == ["uses 'river'"] and "river" in rows[0]["text"].lower()
    assert "overall" in run.stdout
    again = council("eval", "--tasks", str(tasks), "--out", str(out), timeout=300)
    assert again.returncode == 0
    assert len(out.read_text().splitlines()) == 2  # nothing answered twice


def test_eval_rejects_a_task_file_without_prompts(tmp_path):
    tasks = tmp_path / "bad.jsonl"
    tasks.write_text(json.dumps({"id": "x"}) + "\n")
    run = council("eval", "--tasks", str(tasks), "--out", str(tmp_path / "o.jsonl"), timeout=120)
    assert run.returncode == 2 and "without id/prompt" in run.stderr


def test_run_with_an_openai_planner_shows_the_program_and_who_wrote_it():
    from bench.openai_stub import ScriptedOpenAI
    from planner.llm import example_programs

    program = example_programs()["fixed_word"][0]
    with ScriptedOpenAI() as server:
        server.reply(f"```python\n{program}```", usage=(900, 250))
        run = council("run", "Ten words; the fourth is river.", "--planner", "openai",
                      "--planner-base-url", server.base_url, "--planner-model", "scripted",
                      "--particles", "4", "--show-program")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "program: the LLM planner (scripted, 1 attempt(s))" in run.stderr
    # --show-program prints what ran on stdout, as it is: valid Python when piped to a file
    assert run.stdout.strip() == program.strip()
    compile(run.stdout, "program.py", "exec")
    assert "planner 900+250 tokens" in run.stderr
    answer = run.stderr.strip().splitlines()[-1]  # the answer goes to stderr then
    assert answer.split()[3] == "river"


def test_strict_exits_1_when_part_of_the_request_is_not_understood(tmp_path):
    run = council("run", "Write one sentence about cats, in Klingon.", "--particles", "2", "--strict", "--json")
    assert run.returncode == 1, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["passed"] is None and "klingon" in " ".join(result["not_understood"]).lower()
    assert "not understood" in result["passed_reason"]
    ok = council("run", "Write a sentence with exactly 6 words.", "--particles", "4", "--strict")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "passed: yes" in ok.stderr and "understood: 'exactly 6 words' -> exactly 6 words" in ok.stderr


def test_run_falls_back_to_the_library_when_the_planner_is_unreachable():
    run = council("run", "Write a sentence with exactly 6 words.", "--planner", "openai",
                  "--planner-base-url", "http://127.0.0.1:9/v1", "--particles", "4")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "program: the library planner — LLM planner failed: planner unreachable" in run.stderr
    assert len(run.stdout.split()) == 6


def test_run_with_another_strategy_escalates_to_the_planner_model():
    from bench.openai_stub import ScriptedOpenAI

    with ScriptedOpenAI() as server:
        server.default = {"content": "42", "usage": (50, 1)}
        run = council("run", "What is 17 + 25? Answer with the number only.", "--strategy", "council-vote",
                      "--samples", "3", "--threshold", "1.5", "--planner-base-url", server.base_url,
                      "--max-tokens", "12")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "strategy: council-vote" in run.stderr and "escalated to the planner model" in run.stderr
    assert run.stdout.strip() == "42"


def test_an_unknown_strategy_is_a_usage_error():
    run = council("run", "hi", "--strategy", "council-magic", timeout=120)
    assert run.returncode == 2 and "unknown strategy 'council-magic'" in run.stderr
    run = council("run", "hi", "--strategy", "council-cascade", "--confidence-by", "vibes", timeout=120)
    assert run.returncode == 2 and "confidence_by" in run.stderr


def test_calibrate_cascade_prints_a_threshold():
    run = council("calibrate-cascade", "--limit", "6", "--target", "0.5")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "follower alone:" in run.stderr
    float(run.stdout.strip().splitlines()[-1])  # the threshold (inf when no threshold reaches it)
