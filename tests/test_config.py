import pytest

from cluster.config import ConfigError, CouncilConfig, env_overrides


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
