"""FollowerPool on a local Ray: replicas start, serve, die, and come back."""

import asyncio

import numpy as np
import pytest
import ray

from actors.engines.base import GenerateRequest
from actors.follower import FollowerActor
from cluster.config import CouncilConfig
from cluster.pool import FollowerPool, NoLiveReplicaError, PoolStartError

pytestmark = pytest.mark.slow


def tiny_config(model_dir, replicas=2, **pool):
    return CouncilConfig.from_dict(
        {
            "engine": {"model": model_dir, "dtype": "float32", "kv_cache_tokens": 4096},
            "pool": {"replicas": replicas, "num_cpus": 1, "health_check_interval_s": 0.5, **pool},
        }
    )


def test_pool_serves_survives_a_kill_and_replaces_the_replica(ray_local, tiny_model_dir):
    req = GenerateRequest(prompt="hi", max_tokens=4, temperature=0.0)

    async def scenario():
        pool = await FollowerPool(FollowerActor, tiny_config(tiny_model_dir)).start(monitor=True)
        try:
            assert len(pool.live()) == 2
            first = await asyncio.gather(*(pool.call("generate", req) for _ in range(6)))
            assert len({tuple(r.token_ids) for r in first}) == 1  # greedy: same everywhere

            victim = pool.replicas[0]
            old_handle = victim.handle
            ray.kill(old_handle)
            # Calls made right after the kill still answer (retried on the survivor).
            during = await asyncio.gather(*(pool.call("generate", req) for _ in range(6)))
            assert all(r.token_ids == first[0].token_ids for r in during)

            await pool.wait_all_alive(timeout=120)  # the monitor noticed and replaced it
            assert victim.handle is not old_handle
            assert victim.generation == 2
            assert pool.restarts == 1
            lp = await pool.call("next_token_logprobs", [1, 2, 3], replica=victim)
            assert isinstance(lp, np.ndarray) and lp.shape == (49152,)

            stats = await pool.stats()
            assert {s["replica_id"] for s in stats} == {"follower-0", "follower-1"}
            assert all(s["engine"]["kind"] == "torch" and s["rss_bytes"] > 0 for s in stats)
        finally:
            await pool.shutdown()

    asyncio.run(scenario())


def test_health_check_detects_a_dead_replica(ray_local, tiny_model_dir):
    async def scenario():
        pool = await FollowerPool(FollowerActor, tiny_config(tiny_model_dir, replicas=1, replica_wait_s=0)).start(
            monitor=False
        )
        try:
            ray.kill(pool.replicas[0].handle)
            await asyncio.sleep(0.5)
            assert await pool.check_health() == ["follower-0"]
            with pytest.raises(NoLiveReplicaError, match="no follower replica is alive"):
                await pool.call("ping")  # not waiting for the replacement (replica_wait_s 0)
            await pool.wait_all_alive(timeout=120)
            assert await pool.call("ping") is True
        finally:
            await pool.shutdown()

    asyncio.run(scenario())


def test_missing_model_fails_the_start_with_the_reason(ray_local, tmp_path):
    cfg = tiny_config(str(tmp_path / "no-such-model"), replicas=1)

    async def scenario():
        pool = FollowerPool(FollowerActor, cfg)
        try:
            await pool.start(monitor=False)
        finally:
            await pool.shutdown()

    with pytest.raises(PoolStartError, match="no-such-model"):
        asyncio.run(scenario())


def test_unplaceable_pool_says_what_the_cluster_has(ray_local, tiny_model_dir):
    cfg = tiny_config(tiny_model_dir, replicas=1, num_gpus=1, startup_timeout_s=2)

    async def scenario():
        await FollowerPool(FollowerActor, cfg).start(monitor=False)

    with pytest.raises(PoolStartError, match="cannot place 1 follower replica"):
        asyncio.run(scenario())
