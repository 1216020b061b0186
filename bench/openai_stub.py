"""A scripted OpenAI-compatible server on 127.0.0.1 (a random port), for planner tests.

No hosted model is reachable here, so this stands in for one at the HTTP edge: each test
scripts the replies (a program, an HTTP status, a hang) and reads back what was asked.

    with ScriptedOpenAI() as server:
        server.reply("```python\\n...\\n```", usage=(1200, 300))
        server.status(500)
        LLMPlannerConfig(base_url=server.base_url, ...)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A burst of concurrent clients (16 escalations at once) must queue, not be refused:
    # the default backlog of 5 drops connections while a slow responder holds the GIL.
    request_queue_size = 256


class ScriptedOpenAI:
    def __init__(self):
        self.script: deque[dict] = deque()
        self.default: dict | None = None  # used when the script runs out
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    # -- scripting ---------------------------------------------------------------------------
    def reply(self, content: str, usage: tuple[int, int] = (100, 50), times: int = 1) -> None:
        for _ in range(times):
            self.script.append({"content": content, "usage": usage})

    def respond_with(self, responder, usage: tuple[int, int] = (100, 10)) -> None:
        """Answer every request not otherwise scripted with `responder(request_body)`, which
        returns the text, or (text, (prompt_tokens, completion_tokens))."""
        self.default = {"responder": responder, "usage": usage}

    def status(self, code: int, times: int = 1) -> None:
        for _ in range(times):
            self.script.append({"status": code})

    def hang(self, seconds: float, times: int = 1) -> None:
        for _ in range(times):
            self.script.append({"hang": seconds})

    def messages(self, i: int) -> list[dict]:
        return self.requests[i]["messages"]

    # -- serving -----------------------------------------------------------------------------
    def _next(self, body: dict) -> dict:
        with self._lock:
            self.requests.append(body)
            if self.script:
                return self.script.popleft()
            return self.default or {"status": 500}

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                entry = stub._next(body)
                if "hang" in entry:
                    time.sleep(entry["hang"])
                    entry = {"status": 504}
                if "status" in entry:
                    self._send(entry["status"], {"error": {"message": f"scripted {entry['status']}",
                                                           "type": "server_error"}},
                               {"retry-after-ms": "20"} if entry["status"] == 429 else {})
                    return
                prompt, completion = entry["usage"]
                # a responder computes the reply from the request (a deterministic stand-in)
                content = entry["responder"](body) if "responder" in entry else entry["content"]
                if isinstance(content, tuple):  # (text, (prompt_tokens, completion_tokens))
                    content, (prompt, completion) = content
                cap = body.get("max_tokens")
                if cap:  # a real server stops at max_tokens: one word stands for one token here
                    content = " ".join(content.split(" ")[:cap])
                    completion = min(completion, cap)
                self._send(200, {
                    "id": "chatcmpl-stub", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "stub"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion},
                })

            def _send(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        return Handler

    def __enter__(self) -> "ScriptedOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
