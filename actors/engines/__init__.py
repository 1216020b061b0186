"""Follower engines: `torch` (embedded default, CPU or GPU) and `vllm` (GPU)."""

from __future__ import annotations

from actors.engines.base import Engine
from cluster.config import EngineConfig


def create_engine(config: EngineConfig) -> Engine:
    """Build the engine `config.kind` names; imports only that backend."""
    if config.kind == "torch":
        from actors.engines.torch_engine import TorchEngine

        return TorchEngine.load(config)
    if config.kind == "vllm":
        from actors.engines.vllm_engine import VLLMEngine

        return VLLMEngine.load(config)
    raise ValueError(f"unknown engine kind {config.kind!r}")
