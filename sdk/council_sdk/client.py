"""`Council`: a small synchronous client for a Council service.

    from council_sdk import Council

    with Council("http://127.0.0.1:8000") as council:
        print(council.generate("Name a river.", max_tokens=16).text)
"""

from __future__ import annotations

from typing import Any

import httpx

from council_sdk.types import GenerateRequest, GenerateResult, Health


class CouncilError(Exception):
    """The service answered with an error; `status` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Council:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 timeout: float = 300.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def generate(self, prompt: str | None = None, **options: Any) -> GenerateResult:
        """Plain sampling from the follower pool; options are GenerateRequest's fields."""
        request = GenerateRequest(prompt=prompt, **options)
        body = request.model_dump(exclude_none=True)
        return GenerateResult.model_validate(self._send("POST", "/v1/generate", json=body))

    def health(self) -> Health:
        return Health.model_validate(self._send("GET", "/healthz"))

    def _send(self, method: str, path: str, **kwargs) -> Any:
        reply = self._http.request(method, path, **kwargs)
        if reply.is_success:
            return reply.json()
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text
        raise CouncilError(reply.status_code, detail if isinstance(detail, str) else str(detail))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Council":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
