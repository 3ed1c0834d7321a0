"""The one place where a foreign exception gains notes, is scrubbed of secrets, or is replaced.

Provider failures keep litellm's own exception types (every one subclasses
``openai.APIError``): ImageBot adds notes saying what to do and removes every secret from
their text. It replaces an exception only where its type would mislead: a 200 answer that
carried an error object (``NoImageError``), an attempt ImageBot gave up on (``litellm.Timeout``),
images paid for but not written (``ImageSaveError``), and an exception that cannot travel
back from a worker process (``RemoteError``).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import pickle
import re
import socket

from llamabot_imagebot import _redact, _routing
from llamabot_imagebot._exceptions import ImageDownloadError, ImageSaveError, NoImageError, RemoteError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any

    from llamabot_imagebot._settings import Settings


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on Python 3.10 (which keeps ``__notes__`` but cannot add to it); never twice."""
    if note in getattr(exc, "__notes__", ()):
        return
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # pragma: no cover - Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it came from, each once."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def hidden_secrets(settings: Settings) -> list[str]:
    """Every secret the settings (or the environment) hold, longest first, to scrub from text."""
    return _redact.secrets_to_hide({"api_key": settings.api_key, "api_base": settings.api_base}, settings.extra)


def scrub(exc: BaseException, hidden: Sequence[str]) -> None:
    """Remove every secret in ``hidden`` from ``exc`` and its chain: arguments, message, body and notes."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while hidden and pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(_redact.scrub(a, hidden) if isinstance(a, str) else a for a in current.args)
        for attr in ("message", "body", "llm_provider_message"):
            value = getattr(current, attr, None)
            if isinstance(value, str):
                with contextlib.suppress(AttributeError):  # read-only on some exception types
                    setattr(current, attr, _redact.scrub(value, hidden))
        notes = getattr(current, "__notes__", None)
        if notes:
            current.__notes__ = [_redact.scrub(note, hidden) for note in notes]  # type: ignore[attr-defined]
        pending += [current.__cause__, current.__context__]


def safe_text(exc: BaseException, settings: Settings) -> str:
    """``Type: message`` with every secret scrubbed: what the history stores for a failure."""
    return _redact.scrub(f"{type(exc).__name__}: {exc}", hidden_secrets(settings))


def connection_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(host, what happened)`` when ``exc`` comes from failing to reach the provider, else None."""
    import httpx

    host, reason = None, None
    for current in chain(exc):
        if isinstance(current, httpx.RequestError) and host is None:
            with contextlib.suppress(RuntimeError):  # .request is unset on hand-made errors
                host = current.request.url.host
        if isinstance(current, socket.gaierror):
            reason = "the host name could not be resolved"
        elif isinstance(current, ConnectionRefusedError):
            reason = "the connection was refused"
        elif isinstance(current, (httpx.ConnectError, httpx.ConnectTimeout)) and reason is None:
            reason = "no connection could be made"
    if reason is None:
        return None
    return host or "the provider", reason


def is_permanent_connection_failure(exc: BaseException) -> bool:
    """A failure no retry can fix: an unknown host name, or a refused connection to this machine."""
    failure = connection_failure(exc)
    if failure is None:
        return False
    host, reason = failure
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return reason.startswith("the host name") or (reason.endswith("refused") and loopback)


def _endpoint(settings: Settings) -> str:
    return _redact.redact_url(settings.api_base) if settings.api_base else "the provider's endpoint"


def enrich(exc: BaseException, settings: Settings) -> None:
    """Add notes saying what to do to a litellm exception, and remove every secret from it, in place."""
    scrub(exc, hidden_secrets(settings))
    litellm = _routing.load_litellm()
    text = str(exc)
    model, provider = settings.model, _routing.provider_name(settings)
    if "model_not_found" in text or isinstance(exc, litellm.NotFoundError):
        note = _routing.not_found_note(model, settings.custom_llm_provider)
        if note:
            add_note(exc, note)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.AuthenticationError) or status == 401 or "api_key" in text.lower():
        where = _routing.key_hint(provider)
        if where:
            add_note(exc, f"Set {where} in the environment, or pass api_key=... to ImageBot.")
    failure = connection_failure(exc)
    if failure is not None:
        host, reason = failure
        add_note(
            exc,
            f"Could not connect to {host} ({reason}). Check the network connection, the host name "
            "(api_base, if you set one) and any proxy settings (HTTPS_PROXY).",
        )
    elif settings.api_base and isinstance(status, int) and status in (404, 405, 501):
        add_note(
            exc,
            f"{_endpoint(settings)} answered HTTP {status}: it has no image endpoint where litellm sent the "
            "request. Check api_base (for OpenAI-compatible servers it usually ends in /v1).",
        )
    elif settings.api_base and "model_dump" in text:
        add_note(
            exc,
            f"{_endpoint(settings)} answered with something that is not an image API's JSON (an HTML page, "
            "say). Check api_base: it should be the provider's API address, not a web page.",
        )


def no_image_error(exc: BaseException, model: str) -> NoImageError | None:
    """The ``ValueError`` for a 200 answer that carried an error object instead of an image.

    litellm raises those as ``APIError`` whose ``status_code`` is the provider's error code
    (a string such as ``"content_policy_violation"``), with the message lost.
    """
    code = getattr(exc, "status_code", None)
    if not isinstance(code, str) or not code or code.isdigit():
        return None
    hint = (
        " Its safety system refused the prompt: rephrase it."
        if any(word in code for word in ("policy", "safety", "moderation"))
        else ""
    )
    return NoImageError(f"{model} answered without an image; the provider reported error code {code!r}.{hint}")


@contextlib.contextmanager
def refined(settings: Settings, kind: str = "generate") -> Iterator[None]:
    """Around a provider call: notes added, secrets scrubbed, types kept, but for a refusal
    (``RefusedError``), a missing key (``AuthenticationError``) and a 200 with an error object."""
    try:
        yield
    except Exception as exc:
        replaced = missing_key(exc, settings)
        if replaced is not None:
            raise replaced from None  # litellm's own text names no variable: nothing of it is worth keeping
        scrub(exc, hidden_secrets(settings))
        replaced = refusal_of(exc, settings, kind)
        if replaced is not None:
            raise replaced from exc
        enrich(exc, settings)
        replaced = no_image_error(exc, settings.model)
        if replaced is not None:
            raise replaced from exc
        raise


def timeout_error(model: str, timeout: float, attempts: int) -> Exception:
    """The ``litellm.Timeout`` for a call ImageBot gave up on at its deadline."""
    litellm = _routing.load_litellm()
    message = (
        f"ImageBot gave up on {model} after {timeout:g} s ({attempts} attempt{'s' * (attempts != 1)}). "
        "Raise `timeout` to wait longer; high-quality images can take over 2 minutes."
    )
    return litellm.Timeout(message=message, model=model, llm_provider="")


def gave_up_retrying(exc: BaseException, made: int, used: float, wait: float, timeout: float) -> None:
    """Say on ``exc`` that the time budget, not the retry count, stopped the retries."""
    add_note(
        exc,
        f"ImageBot stopped retrying after {made} attempt{'s' * (made > 1)} in {used:.1f} s: the next wait "
        f"({wait:.1f} s) would pass the {timeout:g} s timeout. Raise `timeout` to retry longer.",
    )


def told_to_wait(model: str, asked: float, timeout: float) -> Exception:
    """The ``litellm.RateLimitError`` for a call not sent: the provider asked to wait longer than its timeout."""
    litellm = _routing.load_litellm()
    message = (
        f"Not sent: the provider asked to wait {asked:,.0f} s before the next request (Retry-After), longer "
        f"than this call's timeout of {timeout:g} s. Try again later, or raise `timeout` to wait it out."
    )
    return litellm.RateLimitError(message=message, model=model, llm_provider="")


def unsaved(exc: Exception, images: Any) -> Exception:
    """The error for images that were generated (and paid for) but not saved: it carries them.

    ImageBot's own errors (a failed or cut-short download, bytes that are not an image) keep
    their type and gain ``images`` and a note; a failure to write (a read-only folder, a full
    disk) becomes ``ImageSaveError``, whose message says where the images are.
    """
    count = len(images)
    where = (
        f"{'The generated image is' if count == 1 else f'The {count} generated images are'} on this exception "
        "as exc.images; exc.images[0].save(path) writes it elsewhere."
    )
    if isinstance(exc, ImageDownloadError) or not isinstance(exc, OSError):
        exc.images = images  # type: ignore[attr-defined]
        add_note(exc, where)
        return exc
    error = ImageSaveError(exc.errno, f"{exc.strerror or exc}. {where}", exc.filename)
    error.images = images
    return error


def portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling (to travel back from a worker process), else a ``RemoteError``."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        notes = " ".join(getattr(exc, "__notes__", []))
        error = RemoteError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} {notes}".strip())
        error.type_name = type(exc).__qualname__
        return error
    return exc


_MISSING_KEY = re.compile(r"missing credentials|api_key client option must be set|_API_KEY is not set", re.IGNORECASE)


def missing_key(exc: BaseException, settings: Settings) -> Exception | None:
    """A ``litellm.AuthenticationError`` naming the variable, for litellm's own "no key" failures.

    litellm finds a missing key before sending anything on most paths (OpenAI, xAI, Recraft,
    Gemini) but reports it as a 500 or a connection error, which ``except
    litellm.AuthenticationError`` misses and which no retry can fix.
    """
    if settings.api_key or not _MISSING_KEY.search(str(exc)):
        return None
    provider = _routing.provider_name(settings)
    keys = _routing.fact(provider, "keys") or ()
    if keys and any(os.environ.get(name) for name in keys):
        return None
    where = " or ".join(keys) if keys else (_routing.key_hint(provider) or "the provider's API key")
    message = (
        f"No API key for {provider or settings.model}: set {where} in the environment"
        f"{f' (export {keys[0]}=...)' if keys else ''}, or pass api_key=... to ImageBot. Nothing was sent."
    )
    litellm = _routing.load_litellm()
    return litellm.AuthenticationError(message=message, llm_provider=provider or "", model=settings.model)


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``RefusedError`` (without importing it: it needs litellm)."""
    return bool(getattr(type(exc), "is_refusal", False))


def refused_before(settings: Settings, reason: str) -> Exception:
    """The ``RefusedError`` a resumed batch gives for an item the provider refused in an earlier run."""
    from llamabot_imagebot._refusal import RefusedError  # heavy: it subclasses litellm's exception

    return RefusedError(
        f"Refused by the provider in an earlier run of this batch: {reason} Not asked again; pass "
        "retry_refused=True (--retry-refused) to ask again.",
        provider=_routing.provider_name(settings),
        model=settings.model,
        reason=reason,
    )


# Refusals ----------------------------------------------------------------------------------
# What each provider sends when its safety system says no (shared/PROVIDERS.md): OpenAI a 400
# with code "moderation_blocked" (litellm 1.110 raises a plain BadRequestError); Azure a 400
# "content_policy_violation" naming categories in inner_error.content_filter_results; Gemini a
# 200 whose candidate's finishReason is IMAGE_SAFETY, IMAGE_PROHIBITED_CONTENT or SAFETY, with no
# image; Imagen (Vertex) predictions carrying raiFilteredReason.
_REFUSAL_CODES = ("moderation_blocked", "content_policy_violation", "content_filter", "responsibleaipolicyviolation")
_GEMINI_REFUSALS = {
    "IMAGE_SAFETY": "output",
    "IMAGE_PROHIBITED_CONTENT": "output",
    "SAFETY": "unknown",
    "PROHIBITED_CONTENT": "prompt",
    "BLOCKLIST": "prompt",
    "SPII": "prompt",
}


def _body(exc: BaseException) -> Any:
    """The provider's error body, as a mapping where it can be had."""
    for current in chain(exc):
        body = getattr(current, "body", None)
        if isinstance(body, dict):
            return body.get("error", body)
        response = getattr(current, "response", None)
        with contextlib.suppress(Exception):  # not an HTTP response, not read, or not JSON
            found = response.json() if response is not None else None
            if isinstance(found, dict):
                return found.get("error", found)
        text = getattr(current, "message", None) or str(current)
        start = text.find("{")
        if start >= 0:
            with contextlib.suppress(ValueError, SyntaxError):
                found = ast.literal_eval(text[start : text.rfind("}") + 1])
                if isinstance(found, dict):
                    return found.get("error", found)
            with contextlib.suppress(ValueError):
                found = json.loads(text[start : text.rfind("}") + 1])
                if isinstance(found, dict):
                    return found.get("error", found)
    return None


def refusal_of(exc: BaseException, settings: Settings, kind: str) -> Exception | None:
    """The ``RefusedError`` for an exception that is a provider's safety refusal, else None."""
    litellm = _routing.load_litellm()
    status_code = getattr(exc, "status_code", None)
    if is_refusal(exc) or not (isinstance(exc, litellm.BadRequestError) or isinstance(status_code, str)):
        return None
    body = _body(exc)
    text = f"{exc} {json.dumps(body, default=str) if body is not None else ''}"
    flagged = isinstance(exc, litellm.ContentPolicyViolationError) or any(
        code in text.lower().replace(" ", "") for code in _REFUSAL_CODES
    )
    if not flagged:
        return None
    code = str(body.get("code") or "") if isinstance(body, dict) else ""
    if not code and isinstance(status_code, str) and not status_code.isdigit():
        code = status_code
    reason = str(body.get("message") or "") if isinstance(body, dict) else ""
    categories = _filtered_categories(body)
    if categories:
        reason = f"{reason} (filtered: {', '.join(categories)})".strip()
    if not reason:
        reason = text.split(" - ", 1)[-1][:500]
    stage = "prompt" if kind == "generate" else ("input" if "image" in reason.lower() else "unknown")
    return _refused(settings, stage, code or "content_policy_violation", reason)


def _filtered_categories(body: Any) -> list[str]:
    """Azure's ``inner_error.content_filter_results``: the categories that were filtered."""
    if not isinstance(body, dict):
        return []
    inner = body.get("inner_error") or body.get("innererror") or {}
    results = inner.get("content_filter_results") if isinstance(inner, dict) else None
    if not isinstance(results, dict):
        return []
    return sorted(name for name, verdict in results.items() if isinstance(verdict, dict) and verdict.get("filtered"))


def refusal_in_answer(answer: bytes | None, settings: Settings, kind: str) -> Exception | None:
    """The ``RefusedError`` for a 200 answer with no image that says why (Gemini, Imagen), else None."""
    if not answer:
        return None
    try:
        body = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    feedback = body.get("promptFeedback") or {}
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        reason = str(feedback.get("blockReasonMessage") or feedback["blockReason"])
        return _refused(settings, "prompt", str(feedback["blockReason"]), reason)
    for candidate in body.get("candidates") or []:
        finish = candidate.get("finishReason") if isinstance(candidate, dict) else None
        if finish in _GEMINI_REFUSALS:
            message = candidate.get("finishMessage") or f"The model stopped with finishReason {finish}."
            return _refused(settings, _GEMINI_REFUSALS[finish], finish, str(message))
    for prediction in body.get("predictions") or []:
        filtered = prediction.get("raiFilteredReason") if isinstance(prediction, dict) else None
        if filtered:
            stage = "prompt" if "prompt" in str(filtered).lower() and kind == "generate" else "output"
            return _refused(settings, stage, "raiFilteredReason", str(filtered))
    return None


def _refused(settings: Settings, stage: str, code: str, reason: str) -> Exception:
    from llamabot_imagebot._refusal import RefusedError  # heavy: it subclasses litellm's exception

    reason = _redact.scrub(" ".join(reason.split()), hidden_secrets(settings))
    provider = _routing.provider_name(settings)
    where = {"prompt": "the prompt", "input": "an input image", "output": "the image it made"}.get(stage, "the request")
    message = (
        f"{provider or settings.model} refused {where} ({code}): {reason} Nothing was made, and ImageBot does not "
        "retry a refusal: rephrase the prompt (or change the image) and try again."
    )
    return RefusedError(message, provider=provider, model=settings.model, stage=stage, code=code, reason=reason)
