"""One request through litellm, retried: when to try again, how long to wait, within one deadline.

litellm gives no such guarantees for images: ``num_retries`` is ignored, the OpenAI SDK
path retries on its own unless told ``max_retries=0`` (litellm 1.109 and later pass that
on), bedrock's sync path ignores ``timeout``. So ImageBot runs the retry loop itself.

The decisions live in ``plan``, a generator that yields what to do next (an ``Attempt`` or
a ``Pause``) and is sent what happened; ``run`` (a thread) and ``arun`` (an event loop)
only carry them out. So sync and async calls retry alike, and tests drive the decisions
with a fake clock.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import math
import queue
import random
import re
import threading
import time

from llamabot_imagebot import _errors, _routing, _transport
from llamabot_imagebot._exceptions import DependencyChangedWarning, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator, Mapping
    from typing import Any

    from llamabot_imagebot._clock import Clock
    from llamabot_imagebot._throttle import Throttle

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 20.0
#: The longest ``Retry-After`` taken at its word; a larger (or unreadable) one counts as this long.
MAX_RETRY_AFTER = 86_400.0


class Attempt:
    """Send one request with these kwargs, waiting for it at most ``wait`` seconds."""

    __slots__ = ("kwargs", "wait")

    def __init__(self, kwargs: dict[str, Any], wait: float) -> None:
        self.kwargs = kwargs
        self.wait = wait


class Pause:
    """Wait ``seconds``, then take a turn in the bot's pace, before the next attempt."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Outcome:
    """What an attempt came to: a value, an error, or no answer within its wait."""

    __slots__ = ("error", "timed_out", "value")

    def __init__(self, value: Any = None, error: Exception | None = None, timed_out: bool = False) -> None:
        self.value = value
        self.error = error
        self.timed_out = timed_out


def plan(
    kwargs: dict[str, Any],
    *,
    allowed: int,
    provider: str | None,
    timeout: float,
    deadline: float,
    clock: Clock,
    throttle: Throttle | None = None,
) -> Generator[Attempt | Pause, Outcome | None, Any]:
    """The attempts of one call: at most ``allowed`` requests, all before ``deadline``.

    :param kwargs: What the first attempt sends; a retry sends ``timeout`` = the time left.
    :param allowed: Requests allowed in all (``num_retries + 1``).
    :param provider: Where litellm routes the call (the OpenAI SDK path makes several requests per call).
    :param timeout: The call's whole budget in seconds, for messages.
    :param deadline: The ``clock.now()`` instant the call must end by.
    :param throttle: The bot's pace: a 429 pauses everyone that shares it.
    :return: The value of the attempt that succeeded.
    """
    model = str(kwargs.get("model", ""))
    made = failures = 0
    fallback_tried = False
    while True:
        left = deadline - clock.now()
        if left <= 0:
            raise _errors.timeout_error(model, timeout, made)
        outcome = yield Attempt(kwargs if failures == 0 else {**kwargs, "timeout": left}, left)
        assert outcome is not None
        if outcome.timed_out:
            raise _errors.timeout_error(model, timeout, made + 1)
        exc = outcome.error
        if exc is None:
            return outcome.value
        if not fallback_tried and _is_refused_param(exc) and (fallback := _routing.body_fallback(kwargs)) is not None:
            # litellm refused a parameter OpenAI documents, before sending anything: the same body, unchecked.
            fallback_tried, kwargs = True, fallback
            continue
        if throttle is not None and is_rate_limited(exc):
            throttle.rate_limited(retry_after(exc))
        made += requests_made(exc, kwargs, provider)
        failures += 1
        wait = backoff(failures - 1, exc)
        if made >= allowed or not is_transient(exc):
            raise exc
        if clock.now() + wait >= deadline:
            _errors.gave_up_retrying(exc, made, timeout - (deadline - clock.now()), wait, timeout)
            raise exc
        yield Pause(wait)


def _is_refused_param(exc: BaseException) -> bool:
    import litellm  # already imported: a request was prepared

    return isinstance(exc, litellm.UnsupportedParamsError)


def run(
    steps: Generator[Attempt | Pause, Outcome | None, Any],
    send: Callable[[Attempt], Outcome],
    pause: Callable[[float], None],
) -> Any:
    """Carry out ``plan`` in this thread: ``send`` makes an attempt, ``pause`` waits and takes a turn."""
    action = next(steps)
    while True:
        outcome = None
        if isinstance(action, Attempt):
            outcome = send(action)
        else:
            pause(action.seconds)
        try:
            action = steps.send(outcome)
        except StopIteration as done:
            return done.value


async def arun(
    steps: Generator[Attempt | Pause, Outcome | None, Any],
    send: Callable[[Attempt], Awaitable[Outcome]],
    pause: Callable[[float], Awaitable[None]],
) -> Any:
    """Carry out ``plan`` on the event loop."""
    action = next(steps)
    while True:
        outcome = None
        if isinstance(action, Attempt):
            outcome = await send(action)
        else:
            await pause(action.seconds)
        try:
            action = steps.send(outcome)
        except StopIteration as done:
            return done.value


#: How far past its wait an attempt made in the caller's thread may end before it counts as overrun.
OVERRUN_GRACE = 1.0
#: Providers where an attempt in the caller's thread overran its wait: from then on, a worker bounds theirs.
_overran: set[str | None] = set()


def in_caller(provider: str | None) -> bool:
    """Whether an attempt on ``provider`` may run in the calling thread, bounded by the timeout litellm passes on.

    Where the timeout is known to hold (``timeout_holds``), handing the attempt to a worker thread
    only costs CPU: about 0.5 ms a call, the cost of waking two threads instead of one. A batch's
    items run on daemon workers (``WORKERS.submit``), so Ctrl-C leaves them there too. Not on a
    litellm that cannot switch the OpenAI SDK's own retries off: that SDK retries a timed-out request.
    """
    if not _routing.fact(provider, "timeout_holds") or provider in _overran:
        return False
    return not _routing.fact(provider, "sdk_retries") or _transport.sdk_retries_switchable()


def run_here(fn: Callable[..., Any], kwargs: dict[str, Any], wait: float, provider: str | None) -> Outcome:
    """Run ``fn(**kwargs)`` here; if it ends well past ``wait``, later attempts on ``provider`` go to a worker.

    httpx's timeouts bound each read, not the whole answer: a provider that sends its answer a
    byte at a time, or a litellm that stops passing ``timeout`` on, can hold the attempt longer.
    That is seen when the attempt ends, said once, and not left to happen again.
    """
    started = time.monotonic()
    try:
        outcome = Outcome(fn(**kwargs))
    except Exception as exc:
        outcome = Outcome(error=exc)
    late = time.monotonic() - started - wait
    if late > OVERRUN_GRACE + 0.1 * wait and provider not in _overran:
        _overran.add(provider)
        warn(
            f"A request to {provider} took {late:.1f} s longer than the time it had (the provider sent its answer "
            "very slowly, or litellm did not pass the timeout on); from now on ImageBot bounds each of its "
            "requests in a worker thread.",
            DependencyChangedWarning,
        )
    return outcome


def bounded(fn: Callable[..., Any], kwargs: dict[str, Any], wait: float, cancel: threading.Event | None) -> Outcome:
    """Run ``fn(**kwargs)`` on a daemon worker thread and wait for it at most ``wait`` seconds.

    A provider path that ignores ``timeout`` would otherwise hang the caller, and a batch's
    Ctrl-C (``cancel``) could not stop it; an abandoned attempt ends when the provider answers.
    """
    done = threading.Event()
    box: list[Outcome] = []
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box.append(Outcome(context.run(fn, **kwargs)))
        except Exception as exc:
            box.append(Outcome(error=exc))
        except BaseException as exc:
            box.append(Outcome(error=_Escaped(exc)))
        finally:
            done.set()

    WORKERS.run(target)
    end = time.monotonic() + wait
    while not done.is_set() and (left := end - time.monotonic()) > 0:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        done.wait(min(left, 0.1) if cancel is not None else left)  # short slices only when someone may cancel
    if not box:
        return Outcome(timed_out=True)
    if isinstance(box[0].error, _Escaped):
        raise box[0].error.inner
    return box[0]


class _Workers:
    """Daemon threads that each run one attempt at a time and are reused: starting a thread per
    attempt costs more CPU than the attempt's own bookkeeping. A worker idle for a few seconds
    ends; a busy one never keeps the process from exiting (daemon)."""

    IDLE_SECONDS = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = 0
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args)`` on a worker: its future, which can be cancelled until the worker takes it.

        A batch's items run here rather than in a thread pool, whose threads the interpreter waits
        for at exit: after Ctrl-C, an item still waiting for its answer must not hold the process.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def task() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # KeyboardInterrupt from a cancelled item: its result says so
                future.set_exception(exc)

        self.run(task)
        return future

    def run(self, task: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # an idle worker takes it
        self._tasks.put(task)
        if spawn:
            threading.Thread(target=self._work, name="imagebot-request", daemon=True).start()

    def _work(self) -> None:
        while True:
            try:
                task = self._tasks.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and self._tasks.empty():
                        self._idle -= 1
                        return
                continue
            task()
            with self._lock:
                self._idle += 1


WORKERS = _Workers()


class _Escaped(Exception):
    """A ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``) raised in the request thread."""

    def __init__(self, inner: BaseException) -> None:
        super().__init__(repr(inner))
        self.inner = inner


def requests_made(exc: BaseException, sent: Mapping[str, Any], provider: str | None) -> int:
    """How many requests a failed litellm call made: the SDK's own count where it retried, else what it makes."""
    retried = sdk_retry_count(exc)
    if retried is None:
        return _transport.requests_per_call(provider, sent)
    _transport.sdk_retried(retried, sent)
    return retried + 1


def sdk_retry_count(exc: BaseException) -> int | None:
    """How many times the OpenAI SDK retried before ``exc``: its ``x-stainless-retry-count`` header."""
    for current in _errors.chain(exc):
        for request in (
            getattr(current, "request", None),
            getattr(getattr(current, "response", None), "request", None),
        ):
            try:
                count = request.headers.get("x-stainless-retry-count") if request is not None else None
            except Exception:  # a response object without a request raises on access
                count = None
            if isinstance(count, str) and count.isdigit():
                return int(count)
    return None


_NOT_TRANSIENT = re.compile(r"missing credentials|api[_ ]?key|credentials? (are|is) (missing|not set)", re.IGNORECASE)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed attempt is worth retrying: 429, 5xx gateways, dropped connections, timeouts.

    Decided on litellm's public exception classes (every provider's errors are mapped to them).
    """
    import litellm  # already imported: a request was made

    errors = litellm.exceptions
    # litellm reports a missing key as a 500 on the OpenAI path: retrying cannot help; nor can
    # it for a host name that does not resolve, or a refused connection to this machine.
    if isinstance(exc, errors.ContentPolicyViolationError) or _NOT_TRANSIENT.search(str(exc)):
        return False
    if _errors.is_permanent_connection_failure(exc):
        return False
    if isinstance(exc, (errors.Timeout, errors.RateLimitError)):
        return True
    if isinstance(exc, errors.APIConnectionError):
        return _network_cause(exc)
    if isinstance(exc, (errors.InternalServerError, errors.ServiceUnavailableError, errors.BadGatewayError)):
        return True
    if isinstance(exc, errors.APIError):  # azure and openrouter report a 5xx as a plain APIError
        return getattr(exc, "status_code", None) in TRANSIENT_STATUS
    return _is_network_error(exc)


def _is_network_error(exc: BaseException) -> bool:
    import httpx
    import openai

    return isinstance(exc, (ConnectionError, TimeoutError, httpx.TransportError, openai.APIConnectionError))


def _network_cause(exc: BaseException) -> bool:
    """Whether a litellm APIConnectionError really came from the network (not a local bug)."""
    if any(_is_network_error(inner) for inner in _errors.chain(exc)[1:]):
        return True
    text = str(exc).lower()
    return any(hint in text for hint in ("connection", "timed out", "timeout", "disconnected", "reset by peer"))


def is_rate_limited(exc: BaseException) -> bool:
    """Whether the provider said "too many requests" (429)."""
    import litellm  # already imported: a request was made

    return isinstance(exc, litellm.exceptions.RateLimitError) or getattr(exc, "status_code", None) == 429


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait (``retry-after-ms`` / ``Retry-After``), if it said so readably.

    A value that is not a finite number of seconds or an HTTP date (``soon``, ``inf``, ``nan``)
    counts as absent; a date or number beyond a day counts as a day.
    """
    for inner in _errors.chain(exc):
        for headers in (
            getattr(inner, "litellm_response_headers", None),
            getattr(getattr(inner, "response", None), "headers", None),
        ):
            if headers is None or not hasattr(headers, "get"):
                continue
            try:
                millis, value = headers.get("retry-after-ms"), headers.get("retry-after")
            except Exception:
                continue
            seconds = _seconds(millis, 1000.0) if millis is not None else None
            if seconds is None and value is not None:
                seconds = _seconds(value, 1.0)
            if seconds is not None:
                return seconds
    return None


def _seconds(value: Any, per_second: float) -> float | None:
    try:
        number = float(value) / per_second
    except (TypeError, ValueError, OverflowError):
        number = None
        if per_second == 1.0 and isinstance(value, str):
            number = _http_date(value)
    if number is None or math.isnan(number):
        return None
    return min(max(0.0, number), MAX_RETRY_AFTER)


def _http_date(value: str) -> float | None:
    import email.utils

    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return parsed.timestamp() - time.time()
    except (OverflowError, OSError, ValueError):
        return MAX_RETRY_AFTER


def backoff(attempt: int, exc: BaseException) -> float:
    """Exponential backoff with full jitter, or what ``Retry-After`` asks for."""
    asked = retry_after(exc)
    if asked is not None:
        return asked
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)) + _BACKOFF_BASE / 2
