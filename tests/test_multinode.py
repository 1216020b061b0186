"""Multi-node, for real: replicas spread over the raylets of a local multi-node Ray, a node
removed mid-request (with or without the pool controller on it), the request answered and
the replica replaced on another node, counted as a restart."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("with_controller", [False, True], ids=["replica", "replica-and-controller"])
def test_a_node_removed_mid_request_loses_no_particle_and_its_replica_moves(tiny_model_dir, with_controller):
    script = Path(__file__).with_name("multinode_scenario.py")
    argv = [sys.executable, str(script), tiny_model_dir] + (["--with-controller"] if with_controller else [])
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["nodes_before"] == 2 and report["victim_had_replica"]  # one replica per node (STRICT_SPREAD)
    assert report["victim_particles"] > 0, report  # the node held part of the request when it went
    if with_controller:  # the controller died with the node and its next life adopted the pool
        assert report["controller_on_victim"] and report["controller_moved"]
    assert report["stopped"] == "finished" and report["text"]
    assert report["restored"] > 0 and report["lost"] == 0, report  # continued on the survivor
    assert report["victim_gone"] and report["live_after"] == 2 and report["restarts"] >= 1
    assert report["spread_after"] == 2
