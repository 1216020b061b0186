"""The one thread that runs torch in this process.

Every OS thread that enters an OpenMP parallel region gets its own team of worker threads,
and torch's CPU kernels keep those workers spinning between the many small ops of a decode
step. Two threads that both run torch (say, a model loaded on the main thread and the forward
run from an executor) leave two teams spinning over the same cores: measured here, a SmolLM2
decode step at batch 8 went from 37 ms to 66 ms, on both threads. So the torch engine loads,
computes and sets its thread count all on this single thread.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="council-torch")
_thread_ident: int | None = None


def _remember_thread() -> None:
    global _thread_ident
    _thread_ident = threading.get_ident()


_executor.submit(_remember_thread).result()


def torch_executor() -> ThreadPoolExecutor:
    return _executor


def on_torch_thread(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run `fn` on the torch thread and wait for it (directly, if already there)."""
    if threading.get_ident() == _thread_ident:
        return fn(*args, **kwargs)
    return _executor.submit(fn, *args, **kwargs).result()
