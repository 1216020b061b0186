import hashlib

import pytest

from cluster.config import ConfigError, CouncilConfig, env_overrides, key_label


def test_defaults_are_the_embedded_setup():
    cfg = CouncilConfig()
    assert cfg.engine.kind == "torch"
    assert cfg.engine.model == "smollm2"
    assert cfg.pool.replicas == 1
    assert cfg.pool.num_gpus == 0


def test_yaml_then_env_then_overrides(tmp_path):
    path = tmp_path / "council.yaml"
    path.write_text("pool:\n  replicas: 3\n  num_cpus: 2\nengine:\n  dtype: float32\n")
    env = {"COUNCIL_POOL__REPLICAS": "4", "COUNCIL_ENGINE__MAX_BATCH_SIZE": "16", "OTHER": "x"}
    cfg = CouncilConfig.load(path, env=env, overrides={"engine": {"seed": 7}})
    assert cfg.pool.replicas == 4  # env beats the file
    assert cfg.pool.num_cpus == 2.0  # the file beats defaults
    assert cfg.engine.dtype == "float32"
    assert cfg.engine.max_batch_size == 16
    assert cfg.engine.seed == 7
    cfg = CouncilConfig.load(path, env=env, overrides={"pool": {"replicas": 1}})
    assert cfg.pool.replicas == 1  # explicit overrides beat env


def test_env_overrides_only_take_nested_council_keys():
    assert env_overrides({"COUNCIL_API_KEYS": "a,b", "COUNCIL_POOL__NUM_GPUS": "1"}) == {
        "pool": {"num_gpus": "1"}
    }


@pytest.mark.parametrize(
    "data, field",
    [
        ({"pool": {"replicas": 0}}, "pool.replicas"),
        ({"engine": {"dtype": "int3"}}, "engine.dtype"),
        ({"engine": {"max_batch_size": "lots"}}, "engine.max_batch_size"),
        ({"engine": {"modle": "x"}}, "engine.modle"),  # typo: rejected, not ignored
        ({"engine": {"kind": "vllm"}}, "needs pool.num_gpus"),
    ],
)
def test_bad_values_name_the_field(data, field):
    with pytest.raises(ConfigError) as info:
        CouncilConfig.from_dict(data)
    assert field in str(info.value)


def test_bad_env_value_names_the_field():
    with pytest.raises(ConfigError, match="pool.replicas"):
        CouncilConfig.load(env={"COUNCIL_POOL__REPLICAS": "-2"})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        CouncilConfig.load(tmp_path / "nope.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("pool: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        CouncilConfig.load(bad, env={})
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        CouncilConfig.load(scalar, env={})


def test_each_key_is_a_tenant_named_or_labelled_by_its_hash(monkeypatch):
    monkeypatch.setenv("COUNCIL_API_KEYS", "from-env, plain")
    server = CouncilConfig.from_dict({"server": {"api_keys": ["plain"], "tenants": {"alpha": "sk-alpha"}}}).server
    tenants = server.key_tenants()
    assert tenants == {"from-env": key_label("from-env"), "plain": key_label("plain"), "sk-alpha": "alpha"}
    assert key_label("plain") == "key-" + hashlib.sha256(b"plain").hexdigest()[:8]
    assert server.keys() == {"from-env", "plain", "sk-alpha"}
    assert "sk-alpha" not in repr(server) and "sk-alpha" not in str(server.model_dump())
    defaults = CouncilConfig().server
    assert (defaults.max_running_per_key, defaults.max_queued_per_key, defaults.max_generate,
            defaults.max_generate_per_key) == (None, None, 64, None)


@pytest.mark.parametrize("server, words", [
    ({"tenants": {"Alpha": "k"}}, "tenant name 'Alpha'"),
    ({"tenants": {"anonymous": "k"}}, "'anonymous' is reserved"),
    ({"tenants": {"key-0123abcd": "k"}}, "is reserved"),
    ({"tenants": {"a": "k", "b": "k"}}, "server.tenants.b: the same key"),
    ({"api_keys": ["k"], "tenants": {"a": "k"}}, "server.tenants.a: the same key is also given for server.api_keys"),
    ({"api_keys": [""]}, "non-empty"),
    ({"tenants": {"a": "has space"}}, "no whitespace"),
    ({"max_queued": 4, "max_queued_per_key": 5}, "max_queued_per_key (5) must be at most server.max_queued (4)"),
    ({"max_generate": 4, "max_generate_per_key": 8}, "max_generate_per_key (8) must be at most"),
    ({"max_running_per_key": 40}, "max_running_per_key (40) must be at most planner.max_concurrency (32)"),
    ({"max_running_per_key": 0}, "server.max_running_per_key"),
    ({"tenants": {"a": 987654}}, "server.tenants.a: Input should be a valid string"),
])
def test_bad_tenants_and_limits_are_named_and_never_show_a_key(server, words):
    with pytest.raises(ConfigError) as info:
        CouncilConfig.from_dict({"server": server})
    assert words in str(info.value)
    assert not any(key in str(info.value) for key in ("'k'", "has space", "987654"))
