"""A loopback OpenAI-compatible server (``POST /v1/chat/completions``) for offline checks of the judge path.

It answers with a Python function of the request body, can be told to misbehave (rate limits, server errors,
slow or malformed replies, refused keys or models) for the next requests or for every request from now on, and
counts every request it receives. The kit's tests and
benchmarks drive the real ``openai`` client against it; it is also handy to smoke-test a params file before
spending money on a real judge::

    with StubChatServer(lambda body: "Judgement:\\n1. correct: fine") as server:
        client = OpenAIChatClient(JudgeSpec(base_url=server.url, api_key_env="", judge_model="stub"))

The kit's probe request (:data:`~hadpo.judge.openai_client.PROBE_PROMPT`) is answered by the server itself, so an
answer function only deals with real prompts; it is counted like any request (and in :attr:`probes`), and a
fault scripted for the next request applies to it as to any other.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hadpo.judge.openai_client import PROBE_PROMPT

Answer = Callable[[dict[str, Any]], str]


@dataclass
class StubResponse:
    """One scripted answer: ``body`` None means a normal completion built from the answer function.

    ``body`` may be a dict (sent as JSON) or bytes (sent as is, to imitate a broken proxy).
    """

    status: int = 200
    body: dict[str, Any] | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def completion(text: str, model: str) -> dict[str, Any]:
    """A minimal, valid chat-completion JSON body holding ``text``."""
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class _QuietServer(ThreadingHTTPServer):
    """A threaded server that does not print a traceback when a client hangs up (a timeout test does that)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class StubChatServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) imitating a chat-completions endpoint."""

    def __init__(self, answer: Answer, *, delay: float = 0.0, model: str = "stub-judge") -> None:
        self.answer = answer
        self.delay = delay
        self.model = model
        self.requests: list[dict[str, Any]] = []
        #: Probe requests received (also in :attr:`requests`).
        self.probes = 0
        self.headers: list[dict[str, str]] = []
        self._faults: deque[StubResponse] = deque()
        self._always: StubResponse | None = None
        self._in_flight = 0
        #: The most requests the server was handling at once.
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------------- control
    @property
    def url(self) -> str:
        """Base URL to give the client (ends in ``/v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def count(self) -> int:
        """Requests received so far (including the ones answered with a fault)."""
        with self._lock:
            return len(self.requests)

    def fail_next(self, responses: Iterable[StubResponse]) -> None:
        """Answer the next requests with these, in order, before going back to normal answers."""
        with self._lock:
            self._faults.extend(responses)

    def fail_always(self, response: StubResponse | None) -> None:
        """Answer every request with ``response`` from now on (after any :meth:`fail_next` ones); None heals."""
        with self._lock:
            self._always = response

    def start(self) -> StubChatServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="stub-chat", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StubChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------------- serving
    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> StubResponse:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            fault = self._faults.popleft() if self._faults else self._always
        if fault is not None and (fault.body is not None or fault.status != 200):
            return fault
        delay = fault.delay if fault is not None else self.delay
        messages = body.get("messages") or [{}]
        if messages[-1].get("content") == PROBE_PROMPT:
            with self._lock:
                self.probes += 1
            return StubResponse(body=completion("ready", self.model))
        try:
            text = self.answer(body)
        except Exception as exc:  # a broken answer function shows up as a server error, not a dropped connection
            return StubResponse(status=500, body={"error": {"message": f"stub answer failed: {exc!r}"}})
        return StubResponse(body=completion(text, self.model), delay=delay)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                with stub._lock:
                    stub._in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub._in_flight)
                try:
                    self._post()
                finally:
                    with stub._lock:
                        stub._in_flight -= 1

            def _post(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(StubResponse(status=404, body={"error": {"message": f"no route {self.path}"}}))
                    return
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._send(StubResponse(status=400, body={"error": {"message": "body is not JSON"}}))
                    return
                self._send(stub._next(body, dict(self.headers.items())))

            def _send(self, response: StubResponse) -> None:
                if response.delay:
                    time.sleep(response.delay)
                payload = response.body if isinstance(response.body, bytes) else json.dumps(response.body).encode()
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

        return Handler
