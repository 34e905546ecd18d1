"""A chat client for any OpenAI-compatible server (OpenAI, vLLM, Ollama, LiteLLM, ...), through the ``openai`` package.

What it adds to a bare ``client.chat.completions.create`` call:

* the key is read from the environment only, and never written to the cache, the protocol, a log or a repr;
* a probe (:meth:`OpenAIChatClient.probe`): one tiny request before any work, so a wrong key, an unknown model
  or a dead endpoint stops the run at once, with the server's message;
* bounded retries with exponential backoff and jitter on 429 (honouring ``Retry-After``), 5xx, connection
  errors, timeouts and malformed replies; 401/403/404 and an exhausted quota stop the whole run
  (:class:`~hadpo.errors.JudgeUnavailable`: every other request would fail the same way); any other 4xx fails
  that request at once (retrying a bad request cannot help);
* a circuit breaker: ``judge_failure_streak`` failed calls in a row (429s aside: they are back-pressure, not
  failure), or :data:`GAVE_UP_STREAK` items in a row left without a reply, mean the judge is down; the run
  stops instead of spending every item's retries on it;
* every fault counted (:mod:`hadpo.judge.faults`) for the results to record;
* a bounded number of requests in flight (a thread pool: the calls are I/O);
* every accepted reply cached on disk (:class:`~hadpo.judge.cache.ReplyCache`) under a hash of the full
  request, so a rerun makes no call; a reply the caller cannot use is not cached, so a rerun asks again;
* a progress bar.

The openai package's own retries are switched off (``max_retries=0``) so there is exactly one retry policy.
"""

from __future__ import annotations

import os
import random
import re
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any, Literal

from hadpo.errors import JudgeUnavailable, ParamsError
from hadpo.judge.base import Accept, ChatReply, ChatRequest
from hadpo.judge.cache import ReplyCache, request_key
from hadpo.judge.faults import FaultCounter
from hadpo.specs import JudgeSpec

#: Upper bound on a server-requested wait, so a bogus ``Retry-After`` cannot park a run for hours.
MAX_RETRY_AFTER_S = 300.0

#: Items in a row left without a reply after all their tries, after which the judge is deemed down.
GAVE_UP_STREAK = 3

#: Tries of the probe request, and the longest it waits for one answer or between two tries: a probe is tiny, so
#: a judge that cannot answer it quickly is reported rather than waited for.
PROBE_TRIES = 3
PROBE_TIMEOUT_S = 30.0
PROBE_MAX_WAIT_S = 10.0

#: What the probe asks (a handful of tokens; any completion passes).
PROBE_PROMPT = "Reply with the single word: ready"
PROBE_MAX_TOKENS = 5

#: An OpenAI-style key in a server message (OpenAI echoes a partly masked key back on a 401); the key itself is
#: replaced wherever it appears.
#: Keys shorter than this are not scrubbed from messages (see :class:`OpenAIChatClient`).
MIN_SCRUBBED_KEY = 8
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*.\-]{6,}")

#: HTTP answers that mean every request to this judge will fail the same way.
_FATAL_STATUS = {401: "the server rejected the API key (401)", 403: "access denied (403)",
                 404: "not found (404): an unknown model id, or a base_url that is not an OpenAI-compatible /v1 root"}


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


class _Fatal(Exception):
    """A failure of the judge as a whole, raised inside a call and reported as its :class:`JudgeUnavailable`."""

    def __init__(self, error: JudgeUnavailable) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class _Try:
    """One HTTP call's outcome: ``text`` on success; otherwise the ``reason``, the ``fault`` counter it adds to
    (:data:`~hadpo.judge.faults.FAULT_FIELDS`), a server-requested ``wait``, and whether nothing listened."""

    text: str | None = None
    model: str | None = None
    reason: str = ""
    fault: str = ""
    wait: float | None = None
    refused: bool = False


def _server_message(exc: Exception) -> str:
    """The error message the server sent (the ``error.message`` of an OpenAI-style body), on one line."""
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else str(getattr(exc, "message", None) or exc)
    return " ".join(text.split())[:300]


def _refused(exc: BaseException) -> bool:
    """Whether a connection error is a refused connection (nothing listens at the address)."""
    seen: BaseException | None = exc
    for _ in range(10):  # the cause chain is short; bound it anyway
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        """Build the client; the key is read from the variable ``spec.api_key_env`` names, now.

        ``cache_path`` (or an open ``cache``) holds the reply cache; retries wait ``backoff_base`` seconds,
        doubling up to ``backoff_max`` (a server's ``Retry-After`` wins); ``max_tokens_field`` is the request
        field carrying the limit (newer OpenAI models want ``max_completion_tokens``); ``sleep`` waits between
        tries (default: a wait that ends at once when the breaker stops the run).
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
        # Kept only to scrub error messages; never stored anywhere else. A short "key" would garble every message
        # it happens to occur in (a key "k" turns "fake" into "fa***e"), so it is not scrubbed, and said so.
        self._secret = key if spec.api_key_env and len(key) >= MIN_SCRUBBED_KEY else None
        if spec.api_key_env and self._secret is None:
            warnings.warn(f"the key in ${spec.api_key_env} is suspiciously short ({len(key)} characters); "
                          "messages are not scrubbed of it", stacklevel=2)
        self._client = openai.OpenAI(base_url=spec.base_url, api_key=key, timeout=spec.judge_timeout, max_retries=0)
        if cache is None and cache_path:
            cache = ReplyCache(cache_path)
        self.cache = cache
        self._rng = random.Random()
        self._faults = FaultCounter()
        self._lock = threading.Lock()
        self._served: set[str] = set()
        # Circuit breaker state: consecutive failed calls and items given up, the first fatal error, the stop flag
        # every worker checks before each try (and waits on between tries, so a stop wakes it at once).
        self._failure_streak = 0
        self._gave_up_streak = 0
        self._fatal: JudgeUnavailable | None = None
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._probed = False

    @property
    def calls(self) -> int:
        """HTTP calls made for items so far (cache hits and the probe excluded)."""
        return int(self._faults.snapshot()["requests"])

    # ----------------------------------------------------------------------------------------------- keys
    def _describe(self, request: ChatRequest) -> dict[str, Any]:
        """Everything that decides the reply, without secrets: the cache key is the hash of this."""
        p = self.spec
        described = {
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
        if p.judge_logit_bias:  # only when set, so the keys of existing caches stay valid
            described["logit_bias"] = dict(p.judge_logit_bias)
        return described

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
        if described.get("logit_bias"):
            kwargs["logit_bias"] = described["logit_bias"]
        return kwargs

    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return _KEY_LIKE.sub("***", text)

    def _where(self) -> str:
        return f"judge at {self.spec.base_url} (model {self.spec.judge_model!r})"

    def _unavailable(self, what: str, exc: Exception | None = None) -> JudgeUnavailable:
        said = f": server said: {self._scrub(_server_message(exc))}" if exc is not None else ""
        return JudgeUnavailable(f"{self._where()}: {what}{said}")

    def _backoff(self, retry: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2**retry))
        return delay * (1.0 + 0.25 * self._rng.random())  # jitter de-synchronises the worker threads

    def _trip(self, error: JudgeUnavailable) -> None:
        """Stop every worker; the first fatal error is the one reported."""
        with self._lock:
            if self._fatal is None:
                self._fatal = error
        self._stop.set()

    def _failed_call(self, last: str) -> None:
        """Count one failed call towards the breaker (429s are not counted: they are back-pressure)."""
        with self._lock:
            self._failure_streak += 1
            streak = self._failure_streak
        if streak >= self.spec.judge_failure_streak:
            self._trip(JudgeUnavailable(
                f"{self._where()} looks down: {streak} calls in a row failed (judge_failure_streak "
                f"{self.spec.judge_failure_streak}); last: {self._scrub(last)}; accepted replies are cached, rerun "
                "when the server is back"))

    def _attempt(self, kwargs: dict[str, Any], timeout: float) -> _Try:
        """One HTTP call waiting at most ``timeout`` seconds, classified; raises :class:`_Fatal` (holding the
        :class:`JudgeUnavailable`) when every other call would fail the same way."""
        openai = self._openai
        try:
            response = self._client.chat.completions.create(**kwargs, timeout=timeout)
            text, model = self._extract(response)
            return _Try(text=text, model=model)
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            raise _Fatal(self._unavailable(_FATAL_STATUS[exc.status_code], exc)) from exc
        except openai.RateLimitError as exc:
            if exc.code == "insufficient_quota":
                raise _Fatal(self._unavailable("no quota left (429 insufficient_quota)", exc)) from exc
            return _Try(reason=f"429 rate limited: {_server_message(exc)}", fault="rate_limited",
                        wait=_retry_after(exc))
        except openai.InternalServerError as exc:
            return _Try(reason=f"{exc.status_code} server error: {_server_message(exc)}", fault="server_errors",
                        wait=_retry_after(exc))
        except openai.APIStatusError as exc:
            reason = f"{exc.status_code} error: {_server_message(exc)}"
            if exc.status_code in (408, 409):  # request timeout, conflict: transient
                return _Try(reason=reason, fault="server_errors", wait=_retry_after(exc))
            return _Try(reason=reason, fault="client_errors")
        except openai.APITimeoutError:
            return _Try(reason=f"timed out after {timeout:g} s", fault="timeouts")
        except openai.APIConnectionError as exc:
            refused = _refused(exc)
            reason = f"connection refused at {self.spec.base_url}" if refused else f"connection error: {exc}"
            return _Try(reason=reason, fault="connection_errors", refused=refused)
        except (openai.APIResponseValidationError, _MalformedReply, ValueError, TypeError, AttributeError) as exc:
            return _Try(reason=f"malformed reply: {exc}", fault="malformed")

    def _call(self, described: dict[str, Any]) -> ChatReply:
        """One item's request with the retry policy; never raises (a fatal error trips the breaker)."""
        kwargs = self._kwargs(described)
        last = "no try made"
        tries = 0
        for retry in range(self.spec.judge_max_retries + 1):
            if self._stop.is_set():
                return ChatReply(None, error=self._scrub(f"stopped: {self._fatal}"), tries=tries)
            tries += 1
            self._faults.add("requests")
            if retry:
                self._faults.add("retries")
            try:
                outcome = self._attempt(kwargs, self.spec.judge_timeout)
            except _Fatal as fatal:
                self._trip(fatal.error)
                return ChatReply(None, error=str(fatal.error), tries=tries)
            if outcome.text is not None:
                with self._lock:
                    self._failure_streak = 0
                    self._gave_up_streak = 0
                    if outcome.model:
                        self._served.add(outcome.model)
                return ChatReply(text=outcome.text, tries=tries, model=outcome.model)
            last = self._scrub(outcome.reason)
            self._faults.add(outcome.fault)
            if outcome.fault == "client_errors":
                return ChatReply(None, error=last, tries=tries)
            if outcome.fault != "rate_limited":
                self._failed_call(last)
            if retry < self.spec.judge_max_retries:
                if outcome.wait is not None:
                    self._faults.add("retry_after_wait_s", outcome.wait)
                self._sleep(outcome.wait if outcome.wait is not None else self._backoff(retry))
        self._faults.add("gave_up")
        with self._lock:
            self._gave_up_streak += 1
            streak = self._gave_up_streak
        if streak >= GAVE_UP_STREAK:
            self._trip(JudgeUnavailable(
                f"{self._where()} looks down: {streak} items in a row got no reply after "
                f"{self.spec.judge_max_retries + 1} tries each; last: {last}; accepted replies are "
                "cached, rerun when the server is back"))
        return ChatReply(None, error=f"gave up after {tries} tries: {last}", tries=tries)

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

    # ----------------------------------------------------------------------------------------------- probe
    def probe(self) -> None:
        """One tiny request with the run's settings (model, sampling, stop): the key, the model id and the
        endpoint must work before any item is asked.

        Up to :data:`PROBE_TRIES` tries, each waiting at most :data:`PROBE_TIMEOUT_S`; a 401/403/404, an exhausted
        quota, a refused connection or any other refused request (e.g. a setting the model does not take) raises
        :class:`JudgeUnavailable` at once, as do three failed tries. Not cached; counted in ``probes``. A client
        probes once.
        """
        if self._probed:
            return
        described = self._describe(ChatRequest.user(PROBE_PROMPT))
        kwargs = self._kwargs(described)
        kwargs[self.max_tokens_field] = min(PROBE_MAX_TOKENS, self.spec.judge_max_tokens)
        timeout = min(self.spec.judge_timeout, PROBE_TIMEOUT_S)
        last = ""
        for attempt in range(PROBE_TRIES):
            self._faults.add("probes")
            try:
                outcome = self._attempt(kwargs, timeout)
            except _Fatal as fatal:
                raise fatal.error from None
            if outcome.text is not None:
                if outcome.model:
                    with self._lock:
                        self._served.add(outcome.model)
                self._probed = True
                return
            last = self._scrub(outcome.reason)
            if outcome.fault == "client_errors":
                raise JudgeUnavailable(f"{self._where()}: the probe request was refused: {last}")
            if outcome.refused:
                raise JudgeUnavailable(f"{self._where()}: connection refused (is the server running?)")
            if attempt + 1 < PROBE_TRIES:
                delay = outcome.wait if outcome.wait is not None else self._backoff(attempt)
                self._sleep(min(delay, PROBE_MAX_WAIT_S))
        raise JudgeUnavailable(f"{self._where()} did not answer a probe request in {PROBE_TRIES} tries; last: {last}")

    # ----------------------------------------------------------------------------------------------- batches
    def _cached(self, key: str, index: int, accept: Accept | None, count: bool = True) -> ChatReply | None:
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is None:
            return None
        # A reply cached before the caller's check existed (or under a looser one) is asked again if refused.
        if accept is not None and accept(index, hit[0]) is not None:
            return None
        if count:
            if hit[1]:
                with self._lock:
                    self._served.add(hit[1])
            self._faults.add("cache_hits")
        return ChatReply(text=hit[0], cached=True, model=hit[1])

    def lookup(self, requests: Sequence[ChatRequest], *, accept: Accept | None = None,
               count: bool = True) -> list[ChatReply | None]:
        """Accepted replies in the cache for ``requests`` (None where there is none); makes no call.

        ``count`` False only peeks (the hits are not counted in ``cache_hits``)."""
        return [self._cached(self.cache_key(r), i, accept, count) for i, r in enumerate(requests)]

    def complete(self, requests: Sequence[ChatRequest], *, desc: str = "chat",
                 accept: Accept | None = None) -> list[ChatReply]:
        """Answer ``requests`` (cache first, then at most ``judge_max_concurrency`` calls in flight), in order.

        Raises :class:`JudgeUnavailable` when the judge fails as a whole (see the module docstring); replies
        accepted before that are cached.
        """
        from hadpo.progress import progress

        if self._fatal is not None:
            raise self._fatal
        described = [self._describe(r) for r in requests]
        keys = [request_key(d) for d in described]
        replies: list[ChatReply | None] = [None] * len(requests)
        todo: dict[str, list[int]] = {}  # key -> request indices; identical requests are made once
        for i, key in enumerate(keys):
            hit = self._cached(key, i, accept)
            if hit is not None:
                replies[i] = hit
            else:
                todo.setdefault(key, []).append(i)
        bar = progress(len(requests), desc, unit="requests", initial=len(requests) - sum(map(len, todo.values())),
                       enabled=self.progress, leave=False)
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.spec.judge_max_concurrency, len(todo))),
                                  thread_name_prefix="chat")
        try:
            futures: dict[Future[ChatReply], str] = {
                pool.submit(self._call, described[idx[0]]): key for key, idx in todo.items()}
            for future in as_completed(futures):
                key = futures[future]
                reply = future.result()
                if reply.ok:
                    first = todo[key][0]
                    unusable = accept(first, reply.text or "") if accept is not None else None
                    if unusable is not None:
                        self._faults.add("unusable_replies")
                        reply = replace(reply, unusable=unusable)
                    elif self.cache is not None:
                        self.cache.put(key, described[first], reply.text or "", reply.model)
                for i in todo[key]:
                    replies[i] = reply
                bar.update(len(todo[key]))
                if self._fatal is not None:
                    break
        finally:
            # After a fatal error nobody waits for calls still in flight (they end at their timeout).
            pool.shutdown(wait=self._fatal is None, cancel_futures=True)
            bar.close()
        if self._fatal is not None:
            raise self._fatal
        return [r for r in replies if r is not None]

    # ----------------------------------------------------------------------------------------------- records
    def faults(self) -> dict[str, Any]:
        """Requests made, cache hits and faults met so far."""
        return self._faults.snapshot()

    def protocol(self) -> dict[str, Any]:
        """Backend, model and sampling settings (and the model ids the server reported); no secret."""
        p = self.spec
        with self._lock:
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
            "logit_bias": dict(p.judge_logit_bias),
            "timeout": p.judge_timeout,
            "max_retries": p.judge_max_retries,
            "failure_streak": p.judge_failure_streak,
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
