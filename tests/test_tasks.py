"""The task registry on its own: lifecycle, events, admission, cancel — and a client that
leaves before its submission arrives."""

import asyncio

import pytest
from council_sdk.types import CouncilResult, TaskRequest

from cluster.tasks import (
    INTERNAL_MESSAGE, Gate, QueueFull, TaskRegistry, UnknownTask, classify, clean_message, public_message, unwrap,
)


async def slow_answer(record, emit):
    emit("progress", message="working")
    await asyncio.sleep(0.2)
    return CouncilResult(text="done", passed_check=True, method="x", particles=1, posterior=[],
                         log_ml=0.0, rounds=1, stopped="finished", follower_tokens=1, wall_time_s=0.2)


def test_lifecycle_admission_and_cancel():
    async def scenario():
        ended = []
        reg = TaskRegistry(slow_answer, max_running=1, max_queued=1, on_end=lambda r: ended.append(r.status))
        first = reg.submit(TaskRequest(prompt="a"))
        await asyncio.sleep(0.01)
        second = reg.submit(TaskRequest(prompt="b"))  # waits for the slot
        with pytest.raises(QueueFull):
            reg.submit(TaskRequest(prompt="c"))
        reg.cancel(second.id)
        done = await reg.wait(first.id, 5)
        await asyncio.sleep(0.05)
        kinds = [e.type for e in await reg.events(first.id)]
        return done.status, reg.get(second.id).status, kinds, ended

    status, other, kinds, ended = asyncio.run(scenario())
    assert status == "succeeded" and other == "cancelled"
    assert kinds == ["queued", "running", "progress", "finished"]
    assert sorted(ended) == ["cancelled", "succeeded"]


def test_a_task_abandoned_before_it_arrives_never_runs():
    async def scenario():
        ran = []

        async def run(record, emit):
            ran.append(record.request.prompt)
            return await slow_answer(record, emit)

        reg = TaskRegistry(run, max_running=2, max_queued=2)
        reg.abandon("task-early")
        record = reg.submit(TaskRequest(prompt="late"), task_id="task-early")
        await asyncio.sleep(0.05)
        return record.status, ran, [e.type for e in record.events]

    status, ran, kinds = asyncio.run(scenario())
    assert status == "cancelled" and ran == [] and kinds == ["cancelled"]


# -- tenants: a task belongs to the key that created it ---------------------------------------


def test_another_tenant_cannot_read_wait_stream_cancel_or_abandon_a_task():
    async def scenario():
        reg = TaskRegistry(slow_answer, max_running=2, max_queued=2)
        task = reg.submit(TaskRequest(prompt="mine"), tenant="alpha")
        for call in (lambda: reg.get(task.id, "beta"), lambda: reg.cancel(task.id, "beta"),
                     lambda: reg.get(task.id)):  # no tenant named: `anonymous`, not alpha
            with pytest.raises(UnknownTask):
                call()
        with pytest.raises(UnknownTask):
            await reg.events(task.id, 0, 1, tenant="beta")
        with pytest.raises(UnknownTask):
            await reg.wait(task.id, 1, tenant="beta")
        reg.abandon(task.id, tenant="beta")  # ignored: not beta's
        await asyncio.sleep(0)
        assert reg.get(task.id, "alpha").status == "running"
        done = await reg.wait(task.id, 5, tenant="alpha")
        return done.status, [e.type for e in await reg.events(task.id, tenant="alpha")]

    status, kinds = asyncio.run(scenario())
    assert status == "succeeded" and kinds[-1] == "finished"


def test_an_abandon_from_another_tenant_does_not_cancel_a_task_still_on_its_way():
    async def scenario():
        reg = TaskRegistry(slow_answer, max_running=1, max_queued=1)
        reg.abandon("task-early", tenant="beta")
        record = reg.submit(TaskRequest(prompt="late"), task_id="task-early", tenant="alpha")
        return (await reg.wait(record.id, 5, tenant="alpha")).status

    assert asyncio.run(scenario()) == "succeeded"


def test_the_per_tenant_queue_bound_refuses_only_the_tenant_over_it():
    async def scenario():
        reg = TaskRegistry(slow_answer, max_running=1, max_queued=3, max_queued_per_tenant=1)
        first = reg.submit(TaskRequest(prompt="a1"), tenant="alpha")  # runs
        second = reg.submit(TaskRequest(prompt="a2"), tenant="alpha")  # waits
        with pytest.raises(QueueFull) as refused:
            reg.submit(TaskRequest(prompt="a3"), tenant="alpha")
        other = reg.submit(TaskRequest(prompt="b1"), tenant="beta")  # beta may still wait
        for record in (first, second, other):
            await reg.wait(record.id, 5, tenant=record.tenant)
        return refused.value, [r.status for r in (first, second, other)]

    refused, statuses = asyncio.run(scenario())
    assert refused.code == "key_queue_full" and "this API key" in refused.message
    assert statuses == ["succeeded"] * 3


def test_the_per_tenant_running_bound_lets_another_tenant_pass_it_in_the_queue():
    async def scenario():
        reg = TaskRegistry(slow_answer, max_running=2, max_queued=4, max_running_per_tenant=1)
        a1 = reg.submit(TaskRequest(prompt="a1"), tenant="alpha")
        a2 = reg.submit(TaskRequest(prompt="a2"), tenant="alpha")  # alpha is at its bound: waits
        b1 = reg.submit(TaskRequest(prompt="b1"), tenant="beta")  # takes the free slot
        await asyncio.sleep(0.05)
        during = [r.status for r in (a1, a2, b1)]
        await reg.wait(a1.id, 5, tenant="alpha")
        await asyncio.sleep(0.05)
        after = a2.status
        await reg.wait(a2.id, 5, tenant="alpha")
        return during, after, reg.depth()

    during, after, depth = asyncio.run(scenario())
    assert during == ["running", "queued", "running"] and after == "running"
    assert depth == {"queued": 0, "running": 0}


def test_a_task_that_can_start_is_admitted_with_no_queue_and_a_cancelled_one_frees_its_slot():
    async def scenario():
        reg = TaskRegistry(slow_answer, max_running=1, max_queued=0)
        first = reg.submit(TaskRequest(prompt="a"))
        with pytest.raises(QueueFull) as refused:
            reg.submit(TaskRequest(prompt="b"))
        reg.cancel(first.id)  # before its coroutine has even begun
        second = reg.submit(TaskRequest(prompt="c"))
        return refused.value.code, first.status, (await reg.wait(second.id, 5)).status

    assert asyncio.run(scenario()) == ("queue_full", "cancelled", "succeeded")


def test_the_gate_bounds_calls_in_flight_in_all_and_per_tenant():
    gate = Gate(3, per_tenant=2)
    with gate.enter("alpha"), gate.enter("alpha"):
        with pytest.raises(QueueFull) as mine:
            with gate.enter("alpha"):
                pass
        with gate.enter("beta"):
            with pytest.raises(QueueFull) as everyone:
                with gate.enter("gamma"):
                    pass
    assert gate.total == 0 and not gate.in_flight
    assert (mine.value.code, everyone.value.code) == ("key_generate_limit", "generate_limit")


# -- errors a client may see -----------------------------------------------------------------

LEAKS = ("Traceback", "ray.", 'File "/', "pydantic.dev", "pid=", "/site-packages/")


def test_a_ray_wrapped_refusal_says_its_own_sentence():
    from ray.exceptions import RayTaskError

    cause = QueueFull("the queue is full (4 tasks waiting); retry shortly")
    trace = ('Traceback (most recent call last):\n  File "/srv/council/cluster/tasks.py", line 99, in submit\n'
             "    raise QueueFull(waiting)\ncluster.tasks.QueueFull: the queue is full")
    wrapped = RayTaskError("submit", trace, cause, proctitle="ray::CouncilPlanner.submit", pid=4242,
                           ip="10.0.0.1").as_instanceof_cause()
    assert isinstance(wrapped, QueueFull) and "pid=4242" in str(wrapped)  # what Ray would say
    assert public_message(wrapped) == cause.message and unwrap(wrapped) is cause
    # Even text that is a whole Ray traceback comes out as its last sentence.
    assert clean_message(str(wrapped)) == "the queue is full"


def test_classify_says_one_plain_sentence_for_every_kind_of_failure():
    from ray.exceptions import RayTaskError

    from planner.parse import parse_request
    from planner.sandbox import ProgramError

    with pytest.raises(ValueError) as spec:
        parse_request('{"words": {"exactly": -1}}')
    assert "pydantic.dev" in str(spec.value)  # what the parser says...
    bad = classify(spec.value)  # ...and what the client hears
    assert bad.kind == "bad_request"
    assert bad.message == "invalid constraint spec: words.exactly: Input should be greater than or equal to 0"
    program = ProgramError('step() raised:\n  File "<program>", line 7, in step\n    1 / 0\n'
                           "ZeroDivisionError: division by zero")
    assert classify(program).message == str(program)  # the client's own frames stay
    crash = RuntimeError("boom")
    wrapped = RayTaskError("advance", 'Traceback (most recent call last):\n  File "/x/actors/follower.py", '
                           'line 3\nRuntimeError: boom', crash, pid=7).as_instanceof_cause()
    for exc in (crash, wrapped, KeyError("/srv/council/secret.py")):
        internal = classify(exc)
        assert internal.kind == "internal" and internal.message == INTERNAL_MESSAGE
    for error in (bad, classify(wrapped)):
        assert not any(leak in error.message for leak in LEAKS)
