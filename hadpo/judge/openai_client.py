"""A chat client for any OpenAI-compatible server (OpenAI, vLLM, Ollama, LiteLLM, ...), through the ``openai`` package.

What it adds to a bare ``client.chat.completions.create`` call:

* the key is read from the environment only, and never written to the cache, the protocol, a log or a repr;
* bounded retries with exponential backoff and jitter on 429 (honouring ``Retry-After``), 5xx, connection
  errors, timeouts and malformed replies; any other 4xx fails at once (retrying a bad request cannot help);
* a bounded number of requests in flight (a thread pool: the calls are I/O);
* every successful reply cached on disk (:class:`~hadpo.judge.cache.ReplyCache`) under a hash of the full
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
from typing import Any, Literal

from hadpo.errors import ParamsError
from hadpo.judge.base import ChatReply, ChatRequest
from hadpo.judge.cache import ReplyCache, request_key
from hadpo.specs import JudgeSpec

#: Upper bound on a server-requested wait, so a bogus ``Retry-After`` cannot park a run for hours.
MAX_RETRY_AFTER_S = 300.0


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
    """:class:`~hadpo.judge.base.ChatClient` for OpenAI-compatible servers (see the module docstring)."""

    def __init__(
        self,
        spec: JudgeSpec,
        *,
        cache_path: str | None = None,
        cache: ReplyCache | None = None,
        progress: bool = True,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Build the client; the key is read from the variable ``spec.api_key_env`` names, now.

        ``cache_path`` (or an open ``cache``) holds the reply cache; retries wait ``backoff_base`` seconds,
        doubling up to ``backoff_max`` (a server's ``Retry-After`` wins); ``max_tokens_field`` is the request
        field carrying the limit (newer OpenAI models want ``max_completion_tokens``); ``sleep`` waits.
        """
        import openai  # heavy import kept out of module import so the CLI stays quick

        self.spec = spec
        self.progress = progress
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.max_tokens_field = max_tokens_field
        self._openai = openai
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ParamsError(
                    f"api_key_env: environment variable {spec.api_key_env!r} is not set; export the key there "
                    "(or set api_key_env to '' for a server that needs no key)"
                )
        else:
            key = "no-key"  # the openai package insists on a value; keyless servers ignore it
        # Kept only to scrub error messages; never stored anywhere else.
        self._secret = key if spec.api_key_env else None
        self._client = openai.OpenAI(base_url=spec.base_url, api_key=key, timeout=spec.judge_timeout, max_retries=0)
        if cache is None and cache_path:
            cache = ReplyCache(cache_path)
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
        p = self.spec
        return {
            "base_url": p.base_url.rstrip("/"),
            "model": p.judge_model,
            "messages": [dict(m) for m in request.messages],
            "temperature": p.judge_temperature,
            "max_tokens": p.judge_max_tokens,
            "top_p": p.judge_top_p,
            "seed": request.seed if request.seed is not None else p.judge_seed,
            "stop": list(p.judge_stop),
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
            self.max_tokens_field: described["max_tokens"],
        }
        if described["seed"] is not None:
            kwargs["seed"] = described["seed"]
        if described["stop"]:
            kwargs["stop"] = described["stop"]
        return kwargs

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _backoff(self, retry: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2**retry))
        return delay * (1.0 + 0.25 * self._rng.random())  # jitter de-synchronises the worker threads

    def _call(self, described: dict[str, Any]) -> ChatReply:
        """One request with the retry policy; never raises for a failed request."""
        openai = self._openai
        kwargs = self._kwargs(described)
        last = "no try made"
        tries = 0
        for retry in range(self.spec.judge_max_retries + 1):
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
                last = f"timed out after {self.spec.judge_timeout:g} s"
            except openai.APIConnectionError as exc:
                last = f"connection error: {exc}"
            except (openai.APIResponseValidationError, _MalformedReply, ValueError, TypeError, AttributeError) as exc:
                last = f"malformed reply: {exc}"
            if retry < self.spec.judge_max_retries:
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
                   disable=not self.progress, leave=False)
        try:
            if todo:
                workers = min(self.spec.judge_max_concurrency, len(todo))
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
        p = self.spec
        with self._served_lock:
            served = sorted(self._served)
        return {
            "backend": "openai",
            "base_url": p.base_url,
            "model": p.judge_model,
            "served_models": served,
            "temperature": p.judge_temperature,
            "max_tokens": p.judge_max_tokens,
            "top_p": p.judge_top_p,
            "seed": p.judge_seed,
            "stop": list(p.judge_stop),
            "timeout": p.judge_timeout,
            "max_retries": p.judge_max_retries,
            "max_concurrency": p.judge_max_concurrency,
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
        return f"OpenAIChatClient(model={self.spec.judge_model!r}, base_url={self.spec.base_url!r})"


def backend(spec: JudgeSpec, context: Any) -> OpenAIChatClient:
    """The ``openai`` judge backend (entry point): the client, caching under the run folder unless told otherwise."""
    return OpenAIChatClient(spec, cache_path=spec.judge_cache or context.cache_path, progress=context.progress)
