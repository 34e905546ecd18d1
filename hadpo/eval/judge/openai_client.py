"""A chat client for any OpenAI-compatible server (OpenAI, vLLM, Ollama, LiteLLM, ...), through the ``openai`` package.

What it adds to a bare ``client.chat.completions.create`` call:

* the key is read from the environment only, and never written to the cache, the protocol, a log or a repr;
* bounded retries with exponential backoff and jitter on 429 (honouring ``Retry-After``), 5xx, connection
  errors, timeouts and malformed replies; any other 4xx fails at once (retrying a bad request cannot help);
* a bounded number of requests in flight (a thread pool: the calls are I/O);
* every successful reply cached on disk (:class:`~hadpo.eval.judge.cache.ReplyCache`) under a hash of the full
  request, so a rerun makes no call;
* a progress bar.

The openai package's own retries are switched off (``max_retries=0``) so there is exactly one retry policy.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Literal

from hadpo.config import Params, check, param
from hadpo.errors import ParamsError
from hadpo.eval.judge.base import ChatReply, ChatRequest
from hadpo.eval.judge.cache import ReplyCache, request_key

#: Upper bound on a server-requested wait, so a bogus ``Retry-After`` cannot park a run for hours.
MAX_RETRY_AFTER_S = 300.0


@dataclass
class OpenAIChatParams(Params):
    """Settings of an OpenAI-compatible chat backend (all recorded with results; the key never is)."""

    base_url: str = param("https://api.openai.com/v1", "Server root ending in /v1 (OpenAI, vLLM, Ollama, ...).")
    model: str = param("gpt-4-0613", "Model id; pin a dated snapshot, aliases such as 'gpt-4' drift over time.")
    api_key_env: str = param(
        "OPENAI_API_KEY", "Environment variable holding the API key; '' for servers that need none."
    )
    temperature: float = param(0.0, "Sampling temperature (the original SHR judge used 0.7).")
    max_tokens: int = param(800, "Reply length limit in tokens.")
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = param(
        "max_tokens", "Request field carrying the limit (newer OpenAI models want max_completion_tokens)."
    )
    top_p: float = param(1.0, "Nucleus sampling mass.")
    seed: int | None = param(0, "Sampling seed sent with each request (null to send none).")
    stop: list[str] = param([], "Stop sequences.")
    timeout: float = param(120.0, "Seconds to wait for one reply before retrying.")
    max_retries: int = param(6, "Retries per request after the first try (429, 5xx, timeouts, malformed replies).")
    backoff_base: float = param(1.0, "First retry delay in seconds; doubles on every retry.")
    backoff_max: float = param(60.0, "Largest retry delay in seconds (before jitter).")
    max_concurrency: int = param(16, "Requests in flight at once.")
    cache_path: str = param("", "SQLite reply cache file; '' disables caching.")
    progress: bool = param(True, "Show a progress bar.")

    def __post_init__(self) -> None:
        check(self.base_url.startswith(("http://", "https://")), f"base_url must be an http(s) URL: {self.base_url!r}")
        check(bool(self.model), "model must not be empty")
        check(self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}")
        check(self.max_tokens > 0, f"max_tokens must be > 0, got {self.max_tokens}")
        check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        check(self.timeout > 0, f"timeout must be > 0, got {self.timeout}")
        check(self.max_retries >= 0, f"max_retries must be >= 0, got {self.max_retries}")
        check(self.backoff_base >= 0 and self.backoff_max >= 0, "backoff_base and backoff_max must be >= 0")
        check(self.max_concurrency >= 1, f"max_concurrency must be >= 1, got {self.max_concurrency}")


class _MalformedReply(Exception):
    """A 200 answer without a usable assistant message."""


def _retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``Retry-After`` in seconds), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(max(float(value) * scale, 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            continue  # an HTTP-date form: fall back to our own backoff
    return None


class OpenAIChatClient:
    """:class:`~hadpo.eval.judge.base.ChatClient` for OpenAI-compatible servers (see the module docstring)."""

    def __init__(
        self,
        params: OpenAIChatParams,
        *,
        cache: ReplyCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Build the client; the key is read from ``params.api_key_env`` now. ``sleep`` waits between retries."""
        import openai  # heavy import kept out of module import so the CLI stays quick

        self.params = params
        self._openai = openai
        if params.api_key_env:
            key = os.environ.get(params.api_key_env)
            if not key:
                raise ParamsError(
                    f"api_key_env: environment variable {params.api_key_env!r} is not set; export the key there "
                    "(or set api_key_env to '' for a server that needs no key)"
                )
        else:
            key = "no-key"  # the openai package insists on a value; keyless servers ignore it
        # Kept only to scrub error messages; never stored anywhere else.
        self._secret = key if params.api_key_env else None
        self._client = openai.OpenAI(
            base_url=params.base_url, api_key=key, timeout=params.timeout, max_retries=0
        )
        if cache is None and params.cache_path:
            cache = ReplyCache(params.cache_path)
        self.cache = cache
        self._rng = random.Random()
        self._sleep = sleep
        self._served: set[str] = set()
        self._served_lock = threading.Lock()
        #: HTTP calls made by this client (cache hits excluded); useful in logs and benchmarks.
        self.calls = 0

    # ----------------------------------------------------------------------------------------------- keys
    def _describe(self, request: ChatRequest) -> dict[str, Any]:
        """Everything that decides the reply, without secrets: the cache key is the hash of this."""
        p = self.params
        return {
            "base_url": p.base_url.rstrip("/"),
            "model": p.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": p.temperature,
            "max_tokens": p.max_tokens,
            "top_p": p.top_p,
            "seed": request.seed if request.seed is not None else p.seed,
            "stop": list(p.stop),
            "variant": dict(request.variant),
        }

    def cache_key(self, request: ChatRequest) -> str:
        """The cache key this client uses for ``request``."""
        return request_key(self._describe(request))

    # ----------------------------------------------------------------------------------------------- calls
    def _kwargs(self, described: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": described["model"],
            "messages": described["messages"],
            "temperature": described["temperature"],
            "top_p": described["top_p"],
            self.params.max_tokens_field: described["max_tokens"],
        }
        if described["seed"] is not None:
            kwargs["seed"] = described["seed"]
        if described["stop"]:
            kwargs["stop"] = described["stop"]
        return kwargs

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _backoff(self, retry: int) -> float:
        delay = min(self.params.backoff_max, self.params.backoff_base * (2**retry))
        return delay * (1.0 + 0.25 * self._rng.random())  # jitter de-synchronises the worker threads

    def _call(self, described: dict[str, Any]) -> ChatReply:
        """One request with the retry policy; never raises for a failed request."""
        openai = self._openai
        kwargs = self._kwargs(described)
        last = "no try made"
        tries = 0
        for retry in range(self.params.max_retries + 1):
            tries += 1
            wait: float | None = None
            try:
                with self._served_lock:
                    self.calls += 1
                response = self._client.chat.completions.create(**kwargs)
                text, model = self._extract(response)
                if model:
                    with self._served_lock:
                        self._served.add(model)
                return ChatReply(text=text, tries=tries, model=model)
            except openai.RateLimitError as exc:
                last = f"429 rate limited: {exc}"
                wait = _retry_after(exc)
            except openai.InternalServerError as exc:
                last = f"{exc.status_code} server error: {exc}"
                wait = _retry_after(exc)
            except openai.APIStatusError as exc:
                if exc.status_code not in (408, 409):  # other 4xx: the request itself is wrong
                    return ChatReply(None, error=self._scrub(f"{exc.status_code} error: {exc}"), tries=tries)
                last = f"{exc.status_code} error: {exc}"
            except openai.APITimeoutError:
                last = f"timed out after {self.params.timeout:g} s"
            except openai.APIConnectionError as exc:
                last = f"connection error: {exc}"
            except (openai.APIResponseValidationError, _MalformedReply, ValueError, TypeError, AttributeError) as exc:
                last = f"malformed reply: {exc}"
            if retry < self.params.max_retries:
                self._sleep(max(wait, 0.0) if wait is not None else self._backoff(retry))
        return ChatReply(None, error=self._scrub(f"gave up after {tries} tries: {last}"), tries=tries)

    @staticmethod
    def _extract(response: Any) -> tuple[str, str | None]:
        """``(assistant text, served model id)`` from a completion, or :class:`_MalformedReply`."""
        choices = getattr(response, "choices", None)
        if not choices:
            raise _MalformedReply(f"no choices in {type(response).__name__} {str(response)[:200]!r}")
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if not isinstance(content, str):
            raise _MalformedReply("the first choice has no text content")
        model = getattr(response, "model", None)
        return content, model if isinstance(model, str) else None

    def complete(self, requests: Sequence[ChatRequest], *, desc: str = "chat") -> list[ChatReply]:
        """Answer ``requests`` (cache first, then at most ``max_concurrency`` calls in flight), in order."""
        from tqdm.auto import tqdm

        described = [self._describe(r) for r in requests]
        keys = [request_key(d) for d in described]
        replies: list[ChatReply | None] = [None] * len(requests)
        todo: dict[str, list[int]] = {}  # key -> request indices; identical requests are made once
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                replies[i] = ChatReply(text=hit[0], cached=True, model=hit[1])
                if hit[1]:
                    with self._served_lock:
                        self._served.add(hit[1])
            else:
                todo.setdefault(key, []).append(i)
        bar = tqdm(total=len(requests), initial=len(requests) - sum(map(len, todo.values())), desc=desc,
                   disable=not self.params.progress, leave=False)
        try:
            if todo:
                workers = min(self.params.max_concurrency, len(todo))
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chat") as pool:
                    futures = {pool.submit(self._call, described[idx[0]]): key for key, idx in todo.items()}
                    for future in as_completed(futures):
                        key = futures[future]
                        reply = future.result()
                        if reply.ok and self.cache is not None:
                            self.cache.put(key, described[todo[key][0]], reply.text or "", reply.model)
                        for i in todo[key]:
                            replies[i] = reply
                        bar.update(len(todo[key]))
        finally:
            bar.close()
        return [r for r in replies if r is not None]

    # ----------------------------------------------------------------------------------------------- records
    def protocol(self) -> dict[str, Any]:
        """Backend, model and sampling settings (and the model ids the server reported); no secret."""
        p = self.params
        with self._served_lock:
            served = sorted(self._served)
        return {
            "backend": "openai",
            "base_url": p.base_url,
            "model": p.model,
            "served_models": served,
            "temperature": p.temperature,
            "max_tokens": p.max_tokens,
            "top_p": p.top_p,
            "seed": p.seed,
            "stop": list(p.stop),
            "timeout": p.timeout,
            "max_retries": p.max_retries,
            "max_concurrency": p.max_concurrency,
            "api_key_env": p.api_key_env,
            "cache": str(self.cache.path) if self.cache is not None else None,
        }

    def close(self) -> None:
        """Close the HTTP client and the cache."""
        self._client.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> OpenAIChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAIChatClient(model={self.params.model!r}, base_url={self.params.base_url!r})"
