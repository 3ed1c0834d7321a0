"""One image request through litellm: bounded in time, retried with backoff, requests counted.

litellm gives no such guarantees for images: ``num_retries`` is ignored, the OpenAI
SDK path retries twice on its own unless told ``max_retries=0`` (litellm 1.109 and later
pass that on), bedrock's sync path ignores ``timeout``. So ImageBot runs the retry loop
itself and waits for each attempt no longer than the time left. It changes nothing in
litellm or the SDK: every request a call made counts against ``num_retries + 1``, read
from the SDK's own retry header where it retried, so an old litellm's extra attempts are
counted too.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llamabot._throttle import Throttle

DEFAULT_NUM_RETRIES = 2
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 20.0


def requests_made(exc: BaseException, sent: Mapping[str, Any], per_call: int) -> int:
    """How many requests a failed litellm call made: the SDK's count where it retried, else ``per_call``."""
    from llamabot._providers import note_sdk_retries

    counted = note_sdk_retries(exc, sent)
    return counted if counted is not None else per_call


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_NOT_TRANSIENT = re.compile(r"missing credentials|api[_ ]?key|credentials? (are|is) (missing|not set)", re.IGNORECASE)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed attempt is worth retrying: 429, 5xx gateways, dropped connections, timeouts.

    Decided on litellm's public exception classes (every provider's errors are mapped to them).
    """
    import litellm  # already imported: a request was made

    from llamabot._providers import is_permanent_connection_failure

    errors = litellm.exceptions
    # litellm reports a missing key as a 500 on the OpenAI path: retrying cannot help; nor
    # can it for a host name that does not resolve, or a refused connection to this machine.
    if isinstance(exc, errors.ContentPolicyViolationError) or _NOT_TRANSIENT.search(str(exc)):
        return False
    if is_permanent_connection_failure(exc):
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
    if any(_is_network_error(inner) for inner in _chain(exc)[1:]):
        return True
    text = str(exc).lower()
    return any(hint in text for hint in ("connection", "timed out", "timeout", "disconnected", "reset by peer"))


def is_rate_limited(exc: BaseException) -> bool:
    """Whether the provider said "too many requests" (429)."""
    import litellm  # already imported: a request was made

    return isinstance(exc, litellm.exceptions.RateLimitError) or getattr(exc, "status_code", None) == 429


def _note_failure(exc: BaseException, throttle: Throttle | None) -> None:
    """A 429 pauses everyone sharing the bot's throttle, for as long as the provider asked."""
    if throttle is not None and is_rate_limited(exc):
        throttle.rate_limited(retry_after(exc))


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait (``Retry-After`` / ``retry-after-ms``), if it did."""
    for inner in _chain(exc):
        for headers in (
            getattr(inner, "litellm_response_headers", None),
            getattr(getattr(inner, "response", None), "headers", None),
        ):
            if headers is None or not hasattr(headers, "get"):
                continue
            try:
                millis = headers.get("retry-after-ms")
                if millis is not None:
                    return max(0.0, float(millis) / 1000)
                value = headers.get("retry-after")
            except Exception:
                continue
            if value is None:
                continue
            try:
                return max(0.0, float(value))
            except ValueError:
                parsed = email.utils.parsedate_to_datetime(value) if value else None
                if parsed is not None:
                    return max(0.0, parsed.timestamp() - time.time())
    return None


def backoff(attempt: int, exc: BaseException) -> float:
    """Exponential backoff with full jitter, or what ``Retry-After`` asks for."""
    asked = retry_after(exc)
    if asked is not None:
        return asked
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)) + _BACKOFF_BASE / 2


def _timeout_error(model: str, timeout: float, attempts: int) -> Exception:
    import litellm  # already imported: a request was made

    message = (
        f"ImageBot gave up on {model} after {timeout:g} s ({attempts} attempt{'s' * (attempts != 1)}). "
        "Raise `timeout` to wait longer; high-quality images can take over 2 minutes."
    )
    return litellm.Timeout(message=message, model=model, llm_provider="")


def _run_bounded(
    fn: Callable[..., Any], kwargs: dict[str, Any], wait: float, cancel: threading.Event | None
) -> tuple[bool, Any]:
    """Run ``fn(**kwargs)`` in a daemon thread; return (finished, result) after at most ``wait`` s.

    A provider path that ignores ``timeout`` (bedrock's) would otherwise hang the caller;
    the abandoned thread ends on its own when the provider answers.
    """
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(fn, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="imagebot-request", daemon=True)
    thread.start()
    end = time.monotonic() + wait
    while thread.is_alive() and (left := end - time.monotonic()) > 0:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        # Short slices only when someone may cancel (a batch); one wait otherwise.
        thread.join(min(left, 0.1) if cancel is not None else left)
    if thread.is_alive():
        return False, None
    if "error" in outcome:
        raise outcome["error"]
    return True, outcome["value"]


def _budget(attempt: int, kwargs: dict[str, Any], timeout: float, deadline: float) -> tuple[float, dict[str, Any]]:
    """Time left and the kwargs for this attempt (a retry waits no longer than what is left)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timeout_error(kwargs.get("model", ""), timeout, attempt)
    return left, kwargs if attempt == 0 else {**kwargs, "timeout": left}


def _retry_wait(
    attempt: int, made: int, attempts: int, exc: Exception, deadline: float, timeout: float
) -> float | None:
    """Seconds to wait before retrying, or None to give up and re-raise ``exc``.

    :param attempt: How many litellm calls have failed before this one (for the backoff).
    :param made: The requests made so far, this call's included.
    :param attempts: The requests allowed in all (``num_retries + 1``).

    When the time budget is what stops the retries, ``exc`` gets a note saying so.
    """
    wait = backoff(attempt, exc)
    if made >= attempts or not is_transient(exc):
        return None
    if time.monotonic() + wait >= deadline:
        from llamabot._providers import add_note

        used = timeout - (deadline - time.monotonic())
        add_note(
            exc,
            f"ImageBot stopped retrying after {made} attempt{'s' * (made > 1)} in {used:.1f} s: "
            f"the next wait ({wait:.1f} s) would pass the {timeout:g} s timeout. Raise `timeout` to retry longer.",
        )
        return None
    return wait


def call(
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    *,
    timeout: float,
    attempts: int,
    per_call: int,
    deadline: float,
    cancel: threading.Event | None = None,
    throttle: Throttle | None = None,
) -> Any:
    """Call ``fn`` (``litellm.image_generation``) until it succeeds or ``attempts`` requests were made.

    :param attempts: Requests allowed in all (``num_retries + 1``).
    :param per_call: Requests one call makes on a transient failure, where the SDK does not say.

    With a ``throttle``, a 429 pauses everyone that shares it, and each retry waits for
    its turn in the pace (the first attempt's turn is the caller's to take).
    """
    made = 0
    for attempt in range(attempts):
        left, attempt_kwargs = _budget(attempt, kwargs, timeout, deadline)
        try:
            finished, value = _run_bounded(fn, attempt_kwargs, left, cancel)
        except Exception as exc:
            _note_failure(exc, throttle)
            made += requests_made(exc, kwargs, per_call)
            wait = _retry_wait(attempt, made, attempts, exc, deadline, timeout)
            if wait is None:
                raise
            time.sleep(wait)
            if throttle is not None:
                throttle.acquire(cancel, hold=False)
            continue
        if not finished:
            raise _timeout_error(kwargs.get("model", ""), timeout, made + 1)
        return value
    raise AssertionError("unreachable")  # pragma: no cover


async def acall(
    fn: Callable[..., Awaitable[Any]],
    kwargs: dict[str, Any],
    *,
    timeout: float,
    attempts: int,
    per_call: int,
    deadline: float,
    throttle: Throttle | None = None,
) -> Any:
    """Await ``fn`` (``litellm.aimage_generation``) until it succeeds or ``attempts`` requests were made."""
    made = 0
    for attempt in range(attempts):
        left, attempt_kwargs = _budget(attempt, kwargs, timeout, deadline)
        try:
            return await asyncio.wait_for(fn(**attempt_kwargs), left)
        except asyncio.TimeoutError:
            raise _timeout_error(kwargs.get("model", ""), timeout, made + 1) from None
        except Exception as exc:
            _note_failure(exc, throttle)
            made += requests_made(exc, kwargs, per_call)
            wait = _retry_wait(attempt, made, attempts, exc, deadline, timeout)
            if wait is None:
                raise
            await asyncio.sleep(wait)
            if throttle is not None:
                await throttle.aacquire(hold=False)
    raise AssertionError("unreachable")  # pragma: no cover
