import asyncio
import threading

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
