"""The Ray Serve app in front of the follower pool, over real HTTP on 127.0.0.1."""

import socket

import httpx
import pytest
from council_sdk import Council, CouncilError

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(ray_local, tiny_model_dir):
    from ray import serve

    from serve_app import CouncilIngress

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = {
        "engine": {"model": tiny_model_dir, "dtype": "float32"},
        "pool": {"replicas": 1, "num_cpus": 1},
    }
    serve.run(CouncilIngress.bind(config), name="council-test", route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def test_generate_over_http_with_the_sdk(base_url):
    with Council(base_url) as council:
        result = council.generate("hi", max_tokens=5, seed=1)
        assert 0 < result.completion_tokens <= 5 and isinstance(result.text, str)
        assert council.generate("hi", max_tokens=5, seed=1) == result  # seeded: reproducible
        health = council.health()
        assert (health.status, health.replicas_live, health.replicas) == ("ok", 1, 1)


def test_sdk_raises_typed_errors(base_url):
    with Council(base_url) as council:
        with pytest.raises(CouncilError) as info:
            council._send("POST", "/v1/generate", json={"prompt": "a", "max_tokens": -1})
        assert info.value.status == 422
        with pytest.raises(ValueError):  # caught client-side before any request is sent
            council.generate(None)


@pytest.mark.parametrize(
    "payload",
    [
        {},  # neither prompt nor messages
        {"prompt": "a", "messages": [{"role": "user", "content": "b"}]},
        {"prompt": "a", "max_tokens": 0},
        {"prompt": "a", "temperature": -1},
        {"prompt": "a", "unknown_field": 1},
    ],
)
def test_bad_requests_are_422_with_a_message(base_url, payload):
    reply = httpx.post(f"{base_url}/v1/generate", json=payload, timeout=60)
    assert reply.status_code == 422
    assert reply.json()["detail"]
