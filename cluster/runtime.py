"""Connecting to Ray: an existing cluster (address / RAY_ADDRESS) or a local one in-process."""

from __future__ import annotations

import logging
import os

import ray


def connect_ray(
    address: str | None = None, num_cpus: float | None = None, num_gpus: float | None = None
) -> None:
    """Join `address` (or $RAY_ADDRESS); with neither, start a local Ray in this process.

    Idempotent. `num_gpus` may be logical on a CPU box (tests use it to place "GPU" actors).
    """
    if ray.is_initialized():
        return
    # Ray 2.60+ turns token auth on by default; a private in-process cluster needs none.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = dict(
        include_dashboard=False,
        logging_level=logging.WARNING,
        configure_logging=True,
        log_to_driver=os.environ.get("COUNCIL_RAY_LOG_TO_DRIVER", "1") == "1",
    )
    if address:
        ray.init(address=address, **kwargs)
    else:
        # "local": a new instance. With no address Ray joins the cluster last started on this
        # machine by `ray start` (or a test's cluster_utils.Cluster), if one is up.
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
