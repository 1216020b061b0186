"""The task registry on its own: lifecycle, events, admission, cancel — and a client that
leaves before its submission arrives."""

import asyncio

import pytest
from council_sdk.types import CouncilResult, TaskRequest

from cluster.tasks import QueueFull, TaskRegistry


async def slow_answer(request, emit):
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

        async def run(request, emit):
            ran.append(request.prompt)
            return await slow_answer(request, emit)

        reg = TaskRegistry(run, max_running=2, max_queued=2)
        reg.abandon("task-early")
        record = reg.submit(TaskRequest(prompt="late"), task_id="task-early")
        await asyncio.sleep(0.05)
        return record.status, ran, [e.type for e in record.events]

    status, ran, kinds = asyncio.run(scenario())
    assert status == "cancelled" and ran == [] and kinds == ["cancelled"]
