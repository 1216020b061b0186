"""The service over real HTTP on 127.0.0.1: one Serve app (SmolLM2 follower, library planner)
started once for the module, reached through the official `openai` client, the SDK and raw
HTTP."""

import asyncio
import json
import re
import socket
import time

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from council_sdk import (
    AsyncCouncil, AuthenticationError, BadRequestError, Council, NotFoundError, RateLimitError,
)

from bench.openai_stub import ScriptedOpenAI
from council_sdk.types import STRATEGIES
from planner.constraints import words

pytestmark = pytest.mark.slow

KEY = "test-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
KEY_B = "test-key-2"  # a named tenant, "beta"
AUTH_B = {"Authorization": f"Bearer {KEY_B}"}
KEY_C = "test-key-3"
AUTH_C = {"Authorization": f"Bearer {KEY_C}"}
# What no response body may carry: a traceback, a module path, a source file, a pydantic URL.
LEAKS = ("Traceback", "ray.", 'File "', "pydantic.dev", "pid=")
EIGHT = "Write a sentence with exactly 8 words."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def big():
    """The planner model for escalations and signals (programs still come from the library)."""
    with ScriptedOpenAI() as stub:
        stub.default = {"content": "42", "usage": (40, 1)}
        yield stub


@pytest.fixture(scope="module")
def base_url(ray_local, big):
    from ray import serve

    from serve_app import build_app, stop_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = {
        "pool": {"replicas": 1, "num_cpus": 1},
        "planner": {"max_concurrency": 4, "base_url": big.base_url, "model": "big", "api_retries": 0},
        "server": {"api_keys": [KEY, KEY_C], "tenants": {"beta": KEY_B}, "max_queued": 4,
                   "max_queued_per_key": 2, "max_generate": 4, "max_generate_per_key": 2,
                   "max_body_bytes": 200_000},
    }
    serve.run(build_app(config), name="council-test", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while httpx.get(f"{url}/healthz").json()["replicas_live"] < 1:
        assert time.monotonic() < deadline, "the follower pool did not start"
        time.sleep(1)
    yield url
    stop_app("council-test")  # its pool too: that is detached
    serve.shutdown()  # the next module's Serve starts on a port of its own


@pytest.fixture
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=8)


def metric(base_url, name: str, **labels) -> float:
    """One sample's value from /metrics (0 if absent); labels match in any order."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


# -- the OpenAI-compatible API ---------------------------------------------------------------


def test_the_openai_client_gets_a_chat_completion(client):
    reply = client.chat.completions.create(model="council-smc", messages=[{"role": "user", "content": EIGHT}])
    text = reply.choices[0].message.content
    assert len(words(text)) == 8 and reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens > 0 and reply.model == "council-smc"
    # the prompt as the followers read it (the library planner reads no tokens of its own)
    assert reply.usage.prompt_tokens >= len(EIGHT.split())
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert [m.id for m in client.models.list()] == list(STRATEGIES)


def test_the_openai_client_streams_a_chat_completion(client):
    chunks = list(client.chat.completions.create(
        model="council-smc", messages=[{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": EIGHT}],
        stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(words(text)) == 8
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_structured_output_through_the_openai_client_and_vllm_extras(client):
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
                                               "rainy": {"type": "boolean"}},
              "required": ["city", "rainy"], "additionalProperties": False}
    reply = client.chat.completions.create(
        model="council-smc", messages=[{"role": "user", "content": "Name a city and say if it is rainy."}],
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}})
    value = json.loads(reply.choices[0].message.content)
    assert set(value) == {"city", "rainy"} and isinstance(value["rainy"], bool)
    assert reply.model_extra["council"]["passed"] is True
    regex = client.chat.completions.create(
        model="council-smc", messages=[{"role": "user", "content": "What time is lunch?"}],
        extra_body={"guided_regex": "[0-2][0-9]:[0-5][0-9]"})
    assert re.fullmatch("[0-2][0-9]:[0-5][0-9]", regex.choices[0].message.content)
    streamed = list(client.chat.completions.create(
        model="council-smc", messages=[{"role": "user", "content": "Is it raining? Answer yes or no."}],
        extra_body={"guided_choice": ["yes", "no"]}, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) in ("yes", "no")
    assert streamed[-1].model_extra["council"]["passed"] is True  # what was verified, on the last chunk
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="council-smc", messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"not": {}}}})
    assert "not supported" in str(info.value) and "Traceback" not in str(info.value)


def test_the_sdk_parses_an_answer_into_a_pydantic_model(base_url):
    from pydantic import BaseModel, Field

    class Pet(BaseModel):
        name: str = Field(max_length=24)
        species: str = Field(max_length=24)
        legs: int = Field(ge=0, le=8)

    with Council(base_url, api_key=KEY) as council:
        answer = council.parse("Describe a pet.", Pet, particles=4)
        assert isinstance(answer.parsed, Pet) and answer.result.passed is True
        with pytest.raises(BadRequestError) as info:  # a format only council-smc serves
            council.run("Describe a pet.", strategy="follower", response_format=Pet)
        assert "council-smc" in str(info.value)


def test_an_unknown_model_is_404_in_openai_shape(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert "no model 'gpt-9'" in str(info.value)


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "council-smc"])
def test_every_strategy_answers_through_the_openai_client_and_the_sdk(client, base_url, strategy):
    question = "What is 17 + 25? Answer with the number only."
    reply = client.chat.completions.create(model=strategy, messages=[{"role": "user", "content": question}],
                                           max_tokens=16)
    assert reply.choices[0].message.content and reply.model == strategy
    council_info = reply.model_extra["council"]
    assert council_info["ledger"]["follower_tokens"] + council_info["ledger"]["planner_prompt_tokens"] > 0
    with Council(base_url, api_key=KEY) as council:
        result = council.run(question, strategy=strategy, samples=3, max_tokens=16)
        assert result.text and result.route is not None
        # council-auto answers with the strategy its routes chose, and says so.
        assert result.strategy == (result.route.strategy if strategy == "council-auto" else strategy)
        assert council_info["route"]["strategy"] == result.route.strategy
        if strategy in ("planner", "council-signal"):
            assert result.ledger.planner_calls == 1


# -- the SDK and the native API --------------------------------------------------------------


def test_sdk_run_returns_the_result_with_planner_and_ledger(base_url):
    with Council(base_url, api_key=KEY) as council:
        result = council.run(EIGHT, particles=8)
        assert result.passed_check and len(words(result.text)) == 8
        assert result.constraints == ["exactly 8 words"] and result.planner.path == "library"
        assert result.ledger.follower_tokens == result.follower_tokens > 0
        spec = council.run({"words": {"exactly": 5}}, particles=4)
        assert len(words(spec.text)) == 5


def test_sdk_stream_yields_events_in_order_and_ends_with_the_result(base_url):
    with Council(base_url, api_key=KEY) as council:
        events = list(council.stream("Write an acrostic poem for SUN.", particles=4))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["queued", "running", "planned"] and kinds[-1] == "finished"
    assert "round" in kinds and events[2].constraints == ["lines start with the letters of SUN"]
    rounds = [e.round.round for e in events if e.type == "round"]
    assert rounds == sorted(rounds)
    text = events[-1].result.text
    assert [line[0] for line in text.splitlines()] == ["S", "U", "N"]


def test_sdk_cancel_stops_a_task_and_frees_its_particles(base_url, ray_local, endless_program):
    with Council(base_url, api_key=KEY) as council:
        task = council.submit("Go on forever.", program=endless_program, particles=4, max_rounds=4000)
        for event in council.events(task.id):
            if event.type == "round":
                break
        status = council.cancel(task.id)
        assert status.status == "cancelled" and status.error.kind == "cancelled"
        assert council.get(task.id).status == "cancelled"
    from actors.pool_controller import controller_name
    from cluster.pool import NAMESPACE

    controller = ray_local.get_actor(controller_name("council-test"), namespace=NAMESPACE)
    stats = ray_local.get(controller.replica_stats.remote())
    assert all(r["smc_requests"] == 0 for r in stats)  # no replica still holds its particles


def test_a_client_that_disconnects_cancels_its_work(base_url, endless_program):
    before = metric(base_url, "council_tasks_total", strategy="council-smc", status="cancelled")
    body = {"prompt": "Go on forever.", "program": endless_program, "particles": 4, "max_rounds": 4000, "wait": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base_url}/v1/tasks", json=body, headers=AUTH, timeout=3)
    deadline = time.monotonic() + 30
    while metric(base_url, "council_tasks_total", strategy="council-smc", status="cancelled") <= before:
        assert time.monotonic() < deadline, "the abandoned task was not cancelled"
        time.sleep(0.5)


# -- errors ----------------------------------------------------------------------------------


def test_a_key_is_required_except_for_health_and_metrics(base_url):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        reply = httpx.post(f"{base_url}/v1/tasks", json={"prompt": "hi"}, headers=headers)
        assert reply.status_code == 401 and "API key" in reply.json()["error"]["message"]
    assert httpx.get(f"{base_url}/healthz").status_code == 200
    assert httpx.get(f"{base_url}/metrics").status_code == 200
    with Council(base_url) as council, pytest.raises(AuthenticationError):
        council.get("task-x")


@pytest.mark.parametrize("send, status, words_in_message", [
    (lambda u: httpx.post(f"{u}/v1/tasks", content=b"{not json", headers={**AUTH, "content-type": "application/json"}),
     400, "not valid JSON"),
    (lambda u: httpx.get(f"{u}/v1/tasks/task-nope", headers=AUTH), 404, "no task 'task-nope'"),
    (lambda u: httpx.post(f"{u}/v1/tasks", json={"prompt": "x" * 300_000}, headers=AUTH), 413, "over 200000 bytes"),
    (lambda u: httpx.post(f"{u}/v1/tasks", json={"prompt": "hi", "particles": 1000}, headers=AUTH), 422, "particles"),
    (lambda u: httpx.post(f"{u}/v1/tasks", json={"prompt": "x" * 100_001}, headers=AUTH), 422, "prompt"),
    (lambda u: httpx.post(f"{u}/v1/tasks", json={"prompt": "hi", "spec": {}}, headers=AUTH), 422, "exactly one"),
    (lambda u: httpx.post(f"{u}/v1/tasks", json={"spec": {"words": {"exactly": -1}}, "wait": True}, headers=AUTH),
     400, "invalid constraint spec"),
    (lambda u: httpx.post(f"{u}/v1/tasks", json={"prompt": "hi", "program": "import os", "wait": True}, headers=AUTH),
     400, "import"),
    (lambda u: httpx.post(f"{u}/v1/chat/completions", json={"model": "council-smc", "messages": []}, headers=AUTH),
     422, "messages"),
    (lambda u: httpx.post(f"{u}/v1/chat/completions", headers=AUTH,
                          json={"model": "council-smc", "messages": [{"role": "system", "content": "x"}]}),
     400, "user message"),
])
def test_client_mistakes_are_4xx_with_a_readable_message(base_url, send, status, words_in_message):
    reply = send(base_url)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert words_in_message in error["message"] and error["type"] and error["code"]
    assert not any(leak in reply.text for leak in LEAKS) and reply.headers["x-request-id"]


def test_a_burst_above_the_queue_bound_gets_429_and_every_accepted_task_is_answered(base_url):
    async def burst():
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=60) as http:
            body = {"prompt": "Write a sentence with exactly 6 words.", "particles": 4}
            return await asyncio.gather(*(http.post("/v1/tasks", json=body) for _ in range(16)))

    replies = asyncio.run(burst())
    accepted = [r.json()["id"] for r in replies if r.status_code == 202]
    refused = [r for r in replies if r.status_code == 429]
    assert len(accepted) + len(refused) == 16 and refused and accepted
    assert all(r.headers["retry-after"] and "queue is full" in r.json()["error"]["message"] for r in refused)
    with Council(base_url, api_key=KEY) as council:
        for task_id in accepted:
            for event in council.events(task_id):
                pass
            assert event.type == "finished" and len(words(event.result.text)) == 6


def test_twenty_concurrent_requests_are_all_answered_and_counted(base_url):
    before = metric(base_url, "council_tasks_total", strategy="council-smc", status="succeeded")

    async def twenty():
        async with AsyncCouncil(base_url, api_key=KEY, max_retries=60) as council:
            return await asyncio.gather(*(
                council.run(f"Write a sentence with exactly {5 + i % 4} words.", particles=4, seed=i)
                for i in range(20)))

    results = asyncio.run(twenty())
    assert [len(words(r.text)) for r in results] == [5 + i % 4 for i in range(20)]
    assert metric(base_url, "council_tasks_total", strategy="council-smc", status="succeeded") >= before + 20
    assert metric(base_url, "council_http_requests_total", endpoint="/v1/tasks", status="200") >= 20
    assert metric(base_url, "council_replicas_live") == 1


def test_sdk_errors_are_typed(base_url):
    with Council(base_url, api_key=KEY, max_retries=0) as council:
        with pytest.raises(NotFoundError):
            council.get("task-missing")
        with pytest.raises(BadRequestError) as info:
            council.run("hi", particles=1, program="class Program(Model):\n    pass\n")
        assert "__init__ raised" in info.value.message
    assert issubclass(RateLimitError, Exception)


def test_plain_generation_over_http(base_url):
    with Council(base_url, api_key=KEY) as council:
        result = council.generate("The capital of France is", chat=False, max_tokens=4, temperature=0)
        assert result.text.startswith(" Paris")
        health = council.health()
        assert (health.status, health.replicas_live, health.replicas) == ("ok", 1, 1)
    reply = httpx.post(f"{base_url}/v1/generate", json={"prompt": "a", "max_tokens": 0}, headers=AUTH)
    assert reply.status_code == 422 and "max_tokens" in reply.json()["error"]["message"]
    assert json.loads(reply.text)["error"]["param"] == "max_tokens"


# -- tenants: every key sees its own tasks only ------------------------------------------------


def test_another_key_gets_404_for_a_task_while_its_owner_still_reads_and_cancels_it(base_url, endless_program):
    body = {"prompt": "Go on forever.", "program": endless_program, "particles": 1, "max_rounds": 4000}
    task = httpx.post(f"{base_url}/v1/tasks", json=body, headers=AUTH).json()["id"]
    unknown = httpx.get(f"{base_url}/v1/tasks/task-0000000000000000", headers=AUTH_B).json()["error"]
    for reply in (httpx.get(f"{base_url}/v1/tasks/{task}", headers=AUTH_B),
                  httpx.get(f"{base_url}/v1/tasks/{task}/events", headers=AUTH_B),
                  httpx.delete(f"{base_url}/v1/tasks/{task}", headers=AUTH_B)):
        assert reply.status_code == 404, reply.text
        error = reply.json()["error"]  # exactly what an id that never existed gets
        assert error == {**unknown, "message": f"no task {task!r}"} and error["code"] == "task_not_found"
        assert not any(leak in reply.text for leak in LEAKS)
    mine = httpx.get(f"{base_url}/v1/tasks/{task}", headers=AUTH)
    assert mine.status_code == 200 and mine.json()["status"] in ("queued", "running")
    assert httpx.delete(f"{base_url}/v1/tasks/{task}", headers=AUTH).json()["status"] == "cancelled"


def test_a_key_over_its_queue_bound_gets_429_while_another_key_is_admitted(base_url, endless_program):
    body = {"prompt": "Go on forever.", "program": endless_program, "particles": 1, "max_rounds": 4000}
    mine = []
    try:
        for _ in range(4 + 2):  # the 4 slots (planner.max_concurrency), then its 2 places in the queue
            reply = httpx.post(f"{base_url}/v1/tasks", json=body, headers=AUTH)
            assert reply.status_code == 202, reply.text
            mine.append(reply.json()["id"])
        refused = httpx.post(f"{base_url}/v1/tasks", json=body, headers=AUTH)
        assert refused.status_code == 429 and refused.headers["retry-after"]
        error = refused.json()["error"]
        assert error["code"] == "key_queue_full" and error["type"] == "rate_limit_error"
        assert error["message"].startswith("the queue is full for this API key")
        assert not any(leak in refused.text for leak in LEAKS)
        other = httpx.post(f"{base_url}/v1/tasks", json={"prompt": "Write 5 words.", "particles": 1},
                           headers=AUTH_B)
        assert other.status_code == 202, other.text
    finally:
        for task in mine:
            httpx.delete(f"{base_url}/v1/tasks/{task}", headers=AUTH, timeout=60)
    with Council(base_url, api_key=KEY_B) as council:
        for event in council.events(other.json()["id"]):
            pass
        assert event.type == "finished"


def test_generate_calls_beyond_their_bounds_get_429(base_url):
    async def burst():
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
            body = {"prompt": "Once upon a time", "chat": False, "max_tokens": 96}
            first = [asyncio.create_task(http.post("/v1/generate", json=body, headers=AUTH)) for _ in range(3)]
            await asyncio.sleep(0.3)  # key A's three first: two generate, the third is over A's bound
            first += [asyncio.create_task(http.post("/v1/generate", json=body, headers=AUTH_B)) for _ in range(2)]
            await asyncio.sleep(0.5)  # 2 of key A's and 2 of key B's are generating: the bound of 4
            third = await http.post("/v1/generate", json=body, headers=AUTH_C)
            return await asyncio.gather(*first), third

    first, third = asyncio.run(burst())
    assert sorted(r.status_code for r in first) == [200, 200, 200, 200, 429]
    mine = [r for r in first[:3] if r.status_code == 429][0].json()["error"]
    assert mine["code"] == "key_generate_limit" and "this API key" in mine["message"]
    assert third.status_code == 429 and third.json()["error"]["code"] == "generate_limit"
    assert not any(leak in r.text for r in (*first, third) for leak in LEAKS)
    assert metric(base_url, "council_generate_in_flight") == 0


def test_the_access_log_names_the_tenant_never_the_key(base_url, ray_local):
    import glob
    import os

    rid = f"tenant-log-{time.monotonic_ns()}"
    assert httpx.get(f"{base_url}/v1/tasks/task-nope", headers={**AUTH_B, "x-request-id": rid}).status_code == 404
    logs = ray_local._private.worker._global_node.get_logs_dir_path()
    deadline, lines = time.monotonic() + 10, []
    while not lines:
        assert time.monotonic() < deadline, "no access log line for the request"
        time.sleep(0.2)
        for path in glob.glob(os.path.join(logs, "serve", "replica_council-test_CouncilIngress_*.log")):
            with open(path, errors="replace") as f:
                lines += [line for line in f if rid in line and '"tenant"' in line]
    entry = json.loads(lines[0][lines[0].index("{"):])
    assert entry["tenant"] == "beta" and entry["status"] == 404 and entry["request_id"] == rid
    assert KEY_B not in lines[0]


# -- fuzzing: malformed and hostile requests ---------------------------------------------------
# Whatever hypothesis sends, the answer is never a 5xx, a hang or a leak: a client mistake
# gets a 4xx whose message is one plain sentence naming what is wrong.

WEIRD_TEXT = st.one_of(
    st.text(max_size=40),
    st.just("\ud800"), st.just("a\udfffb"), st.just("x" * 200_000), st.just(""), st.just("\x00"),
    st.just("é" * 10), st.just("{"), st.just("null"),
)
WEIRD_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False), WEIRD_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)
TASK = {"prompt": "Write 3 words.", "particles": 1, "max_tokens": 2, "max_rounds": 2}
CHAT = {"model": "council-smc", "max_tokens": 2, "messages": [{"role": "user", "content": "Say hi."}]}
GENERATE = {"prompt": "Hi", "max_tokens": 2}


@st.composite
def mutated(draw, template: dict):
    """The template with fields dropped, replaced by odd values, or odd fields added."""
    body = json.loads(json.dumps(template))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "replace", "add", "nest"]))
        keys = list(body)
        if action == "drop" and keys:
            body.pop(draw(st.sampled_from(keys)))
        elif action == "replace" and keys:
            body[draw(st.sampled_from(keys))] = draw(WEIRD_VALUE)
        elif action == "add":
            body[draw(st.text(min_size=1, max_size=10))] = draw(WEIRD_VALUE)
        elif action == "nest" and "messages" in body and isinstance(body["messages"], list):
            body["messages"] = [{"role": draw(st.sampled_from(["user", "system", "bot", 3])),
                                 "content": draw(st.one_of(WEIRD_VALUE, st.lists(
                                     st.fixed_dictionaries({"type": st.just("text"), "text": WEIRD_VALUE}),
                                     max_size=3)))}]
    return body


# Header values a client can send at all (no control characters, no surrounding space), but
# otherwise odd: non-ASCII, long, empty.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, blacklist_categories=("Cc",)),
                      max_size=30)
HEADERS = st.fixed_dictionaries({}, optional={
    "x-request-id": st.one_of(HEADER_TEXT, st.sampled_from(["é-non-ascii", "x" * 500, "a b"])),
    "idempotency-key": st.one_of(HEADER_TEXT, st.sampled_from(["é", "x" * 300, ""])),
})


def check(reply: httpx.Response) -> None:
    assert reply.status_code < 500, (reply.status_code, reply.text[:500])
    if reply.status_code >= 400:
        error = reply.json()["error"]
        assert error["message"] and "\n" not in error["message"], error
        assert not any(leak in reply.text for leak in LEAKS), reply.text[:500]
    assert len(reply.headers.get_list("x-request-id")) <= 1


def send(url: str, path: str, body, headers: dict) -> httpx.Response:
    raw = json.dumps(body, ensure_ascii=True).encode()  # lone surrogates travel as \\ud800 escapes
    encoded = {k: v.encode("utf-8") for k, v in headers.items()}
    return httpx.post(url + path, content=raw, timeout=60,
                      headers={**AUTH, "content-type": "application/json", **encoded})


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(body=mutated(TASK), headers=HEADERS)
def test_tasks_endpoint_never_fails_on_a_malformed_body(base_url, body, headers):
    check(send(base_url, "/v1/tasks", body, headers))


@FUZZ
@given(body=mutated(CHAT), headers=HEADERS)
def test_chat_endpoint_never_fails_on_a_malformed_body(base_url, body, headers):
    check(send(base_url, "/v1/chat/completions", body, headers))


@FUZZ
@given(body=mutated(GENERATE), headers=HEADERS)
def test_generate_endpoint_never_fails_on_a_malformed_body(base_url, body, headers):
    check(send(base_url, "/v1/generate", body, headers))


@FUZZ
@given(last_event_id=st.one_of(HEADER_TEXT, st.just("99999999999999999999"), st.just("abc")),
       task_id=st.sampled_from(["task-nope", "../../etc", "é", "x" * 300]))
def test_task_reads_never_fail_on_odd_ids_or_headers(base_url, last_event_id, task_id):
    headers = {**AUTH, "last-event-id": last_event_id.encode("utf-8")}
    for method, path in (("GET", f"/v1/tasks/{task_id}"), ("GET", f"/v1/tasks/{task_id}/events"),
                         ("DELETE", f"/v1/tasks/{task_id}")):
        check(httpx.request(method, base_url + path, headers=headers, timeout=30))


def test_a_finished_tasks_stream_resumed_past_its_end_ends(base_url):
    reply = httpx.post(f"{base_url}/v1/tasks", json={**TASK, "wait": True}, headers=AUTH, timeout=120)
    assert reply.status_code == 200, reply.text
    task_id = reply.json()["id"]
    with httpx.stream("GET", f"{base_url}/v1/tasks/{task_id}/events", timeout=30,
                      headers={**AUTH, "last-event-id": "99999999"}) as stream:
        assert stream.status_code == 200
        assert [line for line in stream.iter_lines() if line.startswith("data:")] == []
