"""The task store on its own (no Ray): runners that die or go quiet, a store that restarts
from its KV, idempotent submissions."""

import asyncio

import pytest
import ray.exceptions
from council_sdk.types import CouncilResult, TaskRequest

from cluster.config import CouncilConfig
from cluster.task_store import MAX_ATTEMPTS, MemoryKV, TaskStore
from cluster.tasks import IdempotencyConflict

CONFIG = CouncilConfig.from_dict({"planner": {"max_concurrency": 2}, "server": {"max_queued": 4}})


def answer(text: str, rounds: int = 1) -> CouncilResult:
    return CouncilResult(text=text, passed_check=True, method="smc", particles=1, posterior=[], log_ml=0.0,
                         rounds=rounds, stopped="finished", follower_tokens=1, wall_time_s=0.0)


class Runners:
    """Dispatch targets scripted per attempt: each reports through the store like a runner."""

    def __init__(self):
        self.store: TaskStore | None = None
        self.seen: list = []
        self.behaviour = {}  # attempt -> "die" | "hang" | "answer"

    async def dispatch(self, assignment):
        self.seen.append(assignment)
        what = self.behaviour.get(assignment.attempt, "answer")
        kept = self.store.progress(assignment.task_id, assignment.attempt, [("progress", {"message": "step 1"})],
                                   checkpoint=f"checkpoint of attempt {assignment.attempt}")
        assert kept
        if what == "die":
            raise ray.exceptions.ActorDiedError()
        if what == "hang":
            await asyncio.sleep(3600)
        if what == "fail":
            raise ValueError("the program is wrong")
        return answer(f"answered by attempt {assignment.attempt} from {assignment.checkpoint}")


def store_with(runners: Runners, kv=None, lease_s: float = 30.0) -> TaskStore:
    store = TaskStore(CONFIG, runners.dispatch, kv=kv, lease_s=lease_s)
    runners.store = store
    return store


def test_a_runner_that_dies_has_its_task_resumed_from_its_checkpoint():
    async def scenario():
        runners = Runners()
        runners.behaviour = {1: "die"}
        store = store_with(runners)
        task = store.submit(TaskRequest(prompt="go"))
        done = await store.registry.wait(task.id, 5)
        return done, runners.seen, [e.type for e in done.events]

    done, seen, kinds = asyncio.run(scenario())
    assert done.status == "succeeded"
    assert done.result.text == "answered by attempt 2 from checkpoint of attempt 1"
    assert [a.checkpoint for a in seen] == [None, "checkpoint of attempt 1"]
    assert kinds == ["queued", "running", "progress", "resumed", "progress", "finished"]


def test_a_runner_that_goes_quiet_loses_its_lease_and_its_late_reports_are_refused():
    async def scenario():
        runners = Runners()
        runners.behaviour = {1: "hang"}
        store = store_with(runners, lease_s=0.3)
        task = store.submit(TaskRequest(prompt="go"))
        done = await store.registry.wait(task.id, 5)
        late = store.progress(task.id, 1, [("progress", {"message": "too late"})])
        return done, late

    done, late = asyncio.run(scenario())
    assert done.status == "succeeded" and "attempt 2" in done.result.text
    assert late is False  # the first runner is told to stop


def test_a_task_that_loses_every_runner_fails_retryable_and_the_tasks_own_error_is_not_retried():
    async def scenario():
        runners = Runners()
        runners.behaviour = {i: "die" for i in range(1, MAX_ATTEMPTS + 1)}
        store = store_with(runners)
        lost = await store.registry.wait(store.submit(TaskRequest(prompt="go")).id, 5)
        wrong_runners = Runners()
        wrong_runners.behaviour = {1: "fail"}
        other = store_with(wrong_runners)
        wrong = await other.registry.wait(other.submit(TaskRequest(prompt="go")).id, 5)
        return lost, len(runners.seen), wrong, len(wrong_runners.seen)

    lost, tries, wrong, wrong_tries = asyncio.run(scenario())
    assert lost.status == "failed" and lost.error.kind == "unavailable" and lost.error.retryable
    assert tries == MAX_ATTEMPTS
    assert wrong.status == "failed" and wrong.error.kind == "bad_request" and not wrong.error.retryable
    assert wrong_tries == 1


def test_a_restarted_store_takes_back_finished_and_running_tasks_from_its_kv():
    kv = MemoryKV()  # the first life's; the second gets what it held at the kill

    async def first_life():
        runners = Runners()
        store = store_with(runners, kv)
        finished = store.submit(TaskRequest(prompt="one"), tenant="alpha")
        await store.registry.wait(finished.id, 5, tenant="alpha")
        runners.behaviour = {1: "hang"}
        running = store.submit(TaskRequest(prompt="two"), tenant="alpha")
        await asyncio.sleep(0.1)
        return finished.id, running.id, dict(kv.data)  # the KV as a SIGKILL would leave it

    async def second_life(finished_id, running_id, left):
        runners = Runners()
        after = MemoryKV()
        after.data.update(left)
        store = store_with(runners, after)
        assert store.load() == 2
        kept = store.registry.get(finished_id, "alpha")
        resumed = await store.registry.wait(running_id, 5, tenant="alpha")
        return kept, resumed, runners.seen

    kept, resumed, seen = asyncio.run(second_life(*asyncio.run(first_life())))
    assert kept.status == "succeeded" and [e.type for e in kept.events][-1] == "finished"
    assert resumed.status == "succeeded"
    assert seen[0].attempt == 2 and seen[0].checkpoint == "checkpoint of attempt 1"
    assert [e.seq for e in resumed.events] == list(range(1, len(resumed.events) + 1))


class RemoteRuns:
    """Dispatch as a Serve handle does it: the run goes on elsewhere, and cancelling the call
    only asks it to stop. The run drops what it holds as it unwinds, a little later."""

    def __init__(self, report: bool = True):
        self.store: TaskStore | None = None
        self.held: set[str] = set()
        self.started = asyncio.Event()
        self.report = report

    async def _run(self, assignment):
        self.held.add(assignment.task_id)
        if self.report:
            self.store.progress(assignment.task_id, assignment.attempt, [("progress", {"message": "round 1"})])
        self.started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.3)  # the scheduler's drops, on the replicas
            self.held.discard(assignment.task_id)
            self.store.released(assignment.task_id, assignment.attempt)

    async def dispatch(self, assignment):
        run = asyncio.ensure_future(self._run(assignment))
        try:
            return await asyncio.shield(run)
        except asyncio.CancelledError:
            run.cancel()  # a request to the other side, not a wait for it
            raise


def test_a_cancel_answers_once_the_runner_has_let_go_of_the_task():
    async def scenario():
        runs = RemoteRuns()
        store = runs.store = TaskStore(CONFIG, runs.dispatch)
        task = store.submit(TaskRequest(prompt="go"))
        await asyncio.wait_for(runs.started.wait(), 5)
        record = store.registry.cancel(task.id)
        await asyncio.wait_for(asyncio.wait([record.job]), 5)  # what the store actor's cancel does
        return record.view().status, set(runs.held)

    status, held = asyncio.run(scenario())
    assert status == "cancelled"
    assert held == set()  # the run had dropped the task's particles before the cancel answered


def test_a_cancel_does_not_wait_for_a_runner_that_never_reported(monkeypatch):
    import cluster.task_store

    monkeypatch.setattr(cluster.task_store, "RELEASE_WAIT_S", 3600.0)

    async def scenario():
        runs = RemoteRuns(report=False)  # it never got as far as a report: nothing to wait for
        store = runs.store = TaskStore(CONFIG, runs.dispatch)
        task = store.submit(TaskRequest(prompt="go"))
        await asyncio.wait_for(runs.started.wait(), 5)
        record = store.registry.cancel(task.id)
        await asyncio.wait_for(asyncio.wait([record.job]), 5)
        return record.view().status

    assert asyncio.run(scenario()) == "cancelled"


def test_an_idempotency_key_answers_with_the_first_task_and_refuses_another_request():
    async def scenario():
        runners = Runners()
        store = store_with(runners)
        first = store.submit(TaskRequest(prompt="go"), tenant="alpha", idempotency_key="k")
        again = store.submit(TaskRequest(prompt="go"), tenant="alpha", idempotency_key="k")
        other_tenant = store.submit(TaskRequest(prompt="go"), tenant="beta", idempotency_key="k")
        with pytest.raises(IdempotencyConflict):
            store.submit(TaskRequest(prompt="something else"), tenant="alpha", idempotency_key="k")
        retried_call = store.submit(TaskRequest(prompt="go"), task_id=first.id, tenant="alpha")
        await store.registry.wait(first.id, 5, tenant="alpha")
        return first, again, other_tenant, retried_call, len(runners.seen)

    first, again, other_tenant, retried_call, runs = asyncio.run(scenario())
    assert again.id == first.id == retried_call.id and other_tenant.id != first.id
    assert runs == 2  # alpha's once, beta's once


def test_writes_behind_keep_their_order_and_a_flush_waits_for_them():
    import time

    from cluster.task_store import WriteBehind

    class SlowKV(MemoryKV):
        def put(self, key, value):
            time.sleep(0.01)  # a GCS round trip
            super().put(key, value)

    async def scenario():
        kv = WriteBehind(SlowKV())
        t0 = time.perf_counter()
        for i in range(20):
            kv.put("k", str(i).encode())
        kv.put("other", b"x")
        kv.delete("other")
        queued = time.perf_counter() - t0
        await kv.flush()
        return queued, kv.get("k"), kv.get("other"), kv.keys("")

    queued, value, gone, keys = asyncio.run(scenario())
    assert queued < 0.05  # the caller did not wait on the writes
    assert value == b"19" and gone is None and keys == ["k"]  # in order: the last write wins
