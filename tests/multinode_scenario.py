"""A multi-node Ray on this machine (`ray.cluster_utils.Cluster`: a head and three worker
raylets, real processes), a detached pool of two follower replicas spread over the workers,
an SMC request, and the node of one replica removed mid-request. With `--with-controller`
the pool controller is placed on that node too, so it dies with it and its next life has to
adopt the pool. Run by test_multinode.py in a process of its own (a driver joins one Ray
cluster per process); prints one JSON line.

    python tests/multinode_scenario.py TINY_MODEL_DIR [--with-controller]
"""

import asyncio
import json
import os
import signal
import sys
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(model_dir: str, with_controller: bool) -> dict:
    import ray
    from ray.cluster_utils import Cluster
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from actors.pool_controller import PoolController, controller_for, controller_name, stop_controller
    from cluster.pool import NAMESPACE
    from cluster.config import CouncilConfig
    from cluster.pool_client import PoolClient
    from cluster.protocol import ProgramSpec
    from cluster.scheduler import InferenceConfig, Scheduler
    from planner.library import generic_program

    cluster = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 0})
    # Two workers for the two replicas; the spare one the replacement moves to is added later,
    # so the first worker surely holds a replica (and, with --with-controller, the controller).
    # "worker": a resource only the workers have, so the controller (no CPU of its own) can be
    # kept off the head node, which cannot be removed.
    workers = [cluster.add_node(num_cpus=1, resources={"worker": 100}) for _ in range(2)]
    cluster.wait_for_nodes()
    config = CouncilConfig.from_dict({
        "engine": {"model": model_dir, "dtype": "float32", "kv_cache_tokens": 4096},
        "pool": {"replicas": 2, "num_cpus": 1, "health_check_interval_s": 0.5, "placement_strategy": "STRICT_SPREAD",
                 "health_check_timeout_s": 10.0},
    })
    if with_controller:  # soft: its next life may (must) start elsewhere
        on_first = NodeAffinitySchedulingStrategy(workers[0].node_id, soft=True)
        controller = PoolController.options(name=controller_name("multinode"), namespace=NAMESPACE,
                                            lifetime="detached", scheduling_strategy=on_first,
                                            resources={"worker": 0.01}).remote(config, "multinode")
    else:
        controller = controller_for(config, "multinode")

    def node_of(handle) -> str:
        return ray.get(handle.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()), timeout=60)

    def pid_of(handle) -> int:
        return ray.get(handle.__ray_call__.remote(lambda self: os.getpid()), timeout=60)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def remove_victim(victim, pids: list[int]) -> int:
        """Remove the node and wait until its actors' processes are gone, as they would be on a
        real machine that died. Ray's `remove_node` kills only the raylet: its workers exit when
        they notice, and until then they keep answering direct actor calls; on a loaded machine
        that took long enough for the whole request to finish on the "removed" replica. Returns
        how many had to be killed here (processes this script's cluster started)."""
        cluster.remove_node(victim)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in pids if alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        return len(left)

    async def scenario() -> dict:
        table = await controller.start.remote()
        nodes_before = sorted(node_of(e.handle) for e in table.replicas)
        pool = await PoolClient(controller, config.pool).start()
        controller_node = node_of(controller)
        # The worker the controller is on (the preferred one, unless a busy machine spilled it
        # to the other: both hold a replica); without --with-controller, the first worker.
        victim = next((w for w in workers if w.node_id == controller_node), workers[0]) if with_controller \
            else workers[0]
        victim_node = victim.node_id
        workers.append(cluster.add_node(num_cpus=1, resources={"worker": 100}))
        cluster.wait_for_nodes()
        removed = {}

        def victim_now() -> tuple[set[str], list[int]]:
            """The replicas on the victim node and their pids, as the controller's table has them
            now: a replica the controller restarted before this round (a health check timed out
            on a loaded machine) has another generation than the one listed at start."""
            now = ray.get(controller.table.remote(-1, 0), timeout=60)
            on_victim = [e for e in now.replicas if e.alive and node_of(e.handle) == victim_node]
            return ({f"follower-{e.index}.{e.generation}" for e in on_victim},
                    [pid_of(e.handle) for e in on_victim] + ([pid_of(controller)] if with_controller else []))

        async def on_round(trace):
            # The first round from the third on where the victim holds part of the request
            # (the load balancer may have had none there for a round or two).
            if trace.round < 3 or removed:
                return
            loop = asyncio.get_running_loop()
            names, pids = await loop.run_in_executor(None, victim_now)
            held = sum(n for rid, n in trace.particles_per_replica.items() if rid in names)
            if held == 0 and trace.round < 20:
                return
            removed.update(at=trace.round, particles=held, per_replica=dict(trace.particles_per_replica))
            removed["killed_here"] = await loop.run_in_executor(None, remove_victim, victim, pids)

        spec = ProgramSpec(source=generic_program(30, chat=False), prompt="Once upon a time", seed=0)
        result = await Scheduler(spec, InferenceConfig(particles=8, seed=0, replica_wait_s=120),
                                 pool.replica_handles, on_round).run()
        for _ in range(240):  # the replacement comes up on the spare node
            table = await controller.table.remote(-1, 0)
            if table.live == 2 and table.restarts >= 1:
                break
            await asyncio.sleep(0.5)
        nodes_after = sorted(node_of(e.handle) for e in table.replicas if e.alive)
        pool.close()
        return {"stopped": result.stopped, "text": bool(result.text), "rounds": result.rounds,
                "restored": sum(t.restored for t in result.trace), "lost": sum(t.lost for t in result.trace),
                "nodes_before": len(set(nodes_before)), "victim_gone": victim_node not in nodes_after,
                "live_after": table.live, "restarts": table.restarts, "spread_after": len(set(nodes_after)),
                "victim_had_replica": victim_node in nodes_before, "victim_particles": removed.get("particles", 0),
                "removed_at_round": removed.get("at"), "per_replica_then": removed.get("per_replica"),
                "victim_processes_killed_here": removed.get("killed_here", 0), "controller_on_victim": controller_node == victim_node,
                "controller_moved": node_of(controller) != controller_node}

    try:
        return asyncio.run(scenario())
    finally:
        stop_controller("multinode")
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], "--with-controller" in sys.argv[2:])), flush=True)
