import asyncio
import threading
import time

import pytest

from actors.engines.autobatch import AutoBatcher


def test_concurrent_callers_share_batches_and_get_their_own_results():
    sizes = []
    threads = set()

    def run(items):
        sizes.append(len(items))
        threads.add(threading.current_thread().name)
        return [x * 10 if x != 3 else ValueError("three") for x in items]

    async def main():
        b = AutoBatcher(run, max_batch=8, wait_ms=20)
        results = await asyncio.gather(*(b.submit(i) for i in range(20)), return_exceptions=True)
        await b.close()
        return results

    results = asyncio.run(main())
    assert [r for i, r in enumerate(results) if i != 3] == [i * 10 for i in range(20) if i != 3]
    assert isinstance(results[3], ValueError)  # one caller's error stays its own
    assert max(sizes) == 8 and sum(sizes) == 20 and len(sizes) <= 4
    assert len(threads) == 1  # the model is only touched by one thread


def test_a_crashing_batch_fails_its_callers_and_the_loop_goes_on():
    calls = []

    def run(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return items

    async def main():
        b = AutoBatcher(run, max_batch=4, wait_ms=1)
        with pytest.raises(RuntimeError, match="boom"):
            await b.submit(1)
        assert await b.submit(2) == 2
        await b.close()

    asyncio.run(main())


def test_cancelled_callers_are_not_computed():
    seen = []
    gate = threading.Event()

    def run(items):
        gate.wait(5)
        seen.extend(items)
        return items

    async def main():
        b = AutoBatcher(run, max_batch=1, wait_ms=0)
        first = asyncio.ensure_future(b.submit("first"))
        await asyncio.sleep(0.05)  # "first" is running, "second" queues behind it
        second = asyncio.ensure_future(b.submit("second"))
        await asyncio.sleep(0.01)
        second.cancel()
        gate.set()
        assert await first == "first"
        assert await b.submit("third") == "third"
        await b.close()

    asyncio.run(main())
    assert seen == ["first", "third"]


def test_a_caller_group_of_the_last_batch_is_waited_for_and_merged():
    """Two groups (two confined workers) that each send all their requests at once, the second
    10 ms after the first, well past the 4 ms gap rule: without groups they took turns at half
    size; with them every round but the first and the last (one group each) is one batch."""
    from actors.engines.autobatch import caller_group

    sizes = []

    def run(items):
        time.sleep(0.1)  # a forward: patience is half of it, 50 ms
        sizes.append(len(items))
        return items

    async def worker(b, name: str, delay: float, rounds: int):
        caller_group.set(name)
        for _ in range(rounds):
            await asyncio.sleep(delay)  # sampling the last batch's answers, one by one
            await asyncio.gather(*(b.submit((name, i)) for i in range(4)))

    async def main():
        b = AutoBatcher(run, max_batch=64, wait_ms=4)
        await asyncio.gather(worker(b, "a", 0.0, 5), worker(b, "b", 0.01, 5))
        await b.close()

    asyncio.run(main())
    assert sum(sizes) == 40
    assert sizes.count(8) == 4, sizes  # the first and last rounds hold one group each
