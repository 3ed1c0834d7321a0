"""How a request travels: the OpenAI SDK's own retries, and the per-attempt clients some guarantees need.

litellm reaches the openai and xai image endpoints through the OpenAI SDK, which retries 429,
5xx, timeouts and dropped connections twice on its own (``max_retries=2``). From litellm 1.109.0
the image path hands a per-call ``max_retries`` to the SDK (read from its source): ImageBot sends
0 and makes every attempt itself. 1.106 to 1.108 make 3 requests whatever is passed (counted on
a local server); there every request is counted from the SDK's own retry header. Azure, though
also on the SDK, makes one attempt per call, and so does every edit (litellm sends those over httpx).
"""

from __future__ import annotations

import functools
import re
import threading

from llamabot_imagebot._exceptions import DependencyChangedWarning, warn
from llamabot_imagebot._routing import fact, warn_changed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from llamabot_imagebot._settings import Settings


SDK_ATTEMPTS = 3
PER_CALL_MAX_RETRIES_SINCE = (1, 109, 0)
#: Set when a request showed the SDK retrying although ``max_retries=0`` was sent.
max_retries_ignored = threading.Event()


@functools.lru_cache(maxsize=1)
def litellm_version() -> tuple[int, ...]:
    """litellm's installed version as numbers (``(0,)`` if unknown)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("litellm")
    except PackageNotFoundError:
        return (0,)
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def sdk_retries_switchable() -> bool:
    """Whether a per-call ``max_retries=0`` turns the OpenAI SDK's own retries off on this litellm."""
    return litellm_version() >= PER_CALL_MAX_RETRIES_SINCE and not max_retries_ignored.is_set()


def requests_per_call(provider: str | None, sent: Mapping[str, Any]) -> int:
    """How many requests one litellm image call makes on a transient failure."""
    if not fact(provider, "sdk_retries"):
        return 1
    asked = sent.get("max_retries")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked >= 0 and sdk_retries_switchable():
        return asked + 1
    return SDK_ATTEMPTS


def sdk_retried(retried: int, sent: Mapping[str, Any]) -> None:
    """The SDK's header said it retried ``retried`` times: warn once if it did so although told not to."""
    if sent.get("max_retries") == 0 and retried > 0 and not max_retries_ignored.is_set():
        max_retries_ignored.set()
        warn(
            "litellm no longer passes a per-call max_retries to the OpenAI SDK on its image path (the SDK retried "
            f"although max_retries=0 was sent); ImageBot now counts the SDK's own {SDK_ATTEMPTS} attempts per call.",
            DependencyChangedWarning,
        )


_warned: set[str] = set()


def warn_fixed_sdk_retries(settings: Settings, provider: str | None) -> None:
    """Say, once per process, that this litellm makes 3 requests a call on the SDK path whatever is asked."""
    retries = settings.extra.get("num_retries")
    if retries is None or not fact(provider, "sdk_retries") or sdk_retries_switchable() or "sdk-retries" in _warned:
        return
    _warned.add("sdk-retries")
    from importlib.metadata import version

    made = max(SDK_ATTEMPTS, -(-(retries + 1) // SDK_ATTEMPTS) * SDK_ATTEMPTS)
    warn(
        f"litellm {version('litellm')} cannot switch off the OpenAI SDK's own retries on the {provider} image "
        f"path: every call makes up to {SDK_ATTEMPTS} requests, so num_retries={retries} can make {made}. "
        "litellm 1.109 and later make exactly num_retries + 1: pip install -U litellm.",
        DependencyChangedWarning,
    )


def with_retries_off(kwargs: dict[str, Any], provider: str | None) -> dict[str, Any]:
    """Where litellm passes a per-call ``max_retries`` to the OpenAI SDK, send 0: every attempt is ImageBot's."""
    if fact(provider, "sdk_retries") and "max_retries" not in kwargs and sdk_retries_switchable():
        kwargs["max_retries"] = 0
    return kwargs


def attempt_client(provider: str | None, timeout: Any, keep: Callable[[bytes], None], kind: str, on_loop: bool) -> Any:
    """An HTTP client of litellm's own kind for one attempt, passed through its public ``client=``, or None.

    Two guarantees need one: litellm's sync bedrock image path ignores ``timeout`` (1.106 to 1.110),
    so a client made with the attempt's timeout bounds it; and Gemini and Vertex answer a refusal
    with a 200 whose reason litellm drops, so the client keeps the answer's body (``keep``).
    litellm runs an async generation's HTTP call in a thread (a sync client), an async edit's on
    the event loop (an async one). The caller closes the client after the attempt. If litellm's
    client classes are gone, ImageBot warns and goes on without.
    """
    refusals = bool(fact(provider, "refuses_in_answer"))
    if not refusals and (provider != "bedrock" or on_loop):
        return None
    try:
        import httpx
        from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, HTTPHandler
    except ImportError:
        warn_changed(
            "the HTTP client classes ImageBot gives an attempt (HTTPHandler)",
            "litellm's shared client: a timed-out attempt may finish in the background, and Gemini's refusal "
            "reasons are not read",
        )
        return None
    if on_loop and kind == "edit":

        async def akeep(response: Any) -> None:
            keep(await response.aread())

        return AsyncHTTPHandler(timeout=timeout, event_hooks={"response": [akeep]})
    if not refusals:
        return HTTPHandler(timeout=timeout)

    def read(response: Any) -> None:
        keep(response.read())

    return HTTPHandler(timeout=timeout, client=httpx.Client(timeout=timeout, event_hooks={"response": [read]}))


async def aclose(client: Any) -> None:
    """Close an attempt's client, sync or async."""
    result = client.close()
    if hasattr(result, "__await__"):
        await result


def check_answer_kept(provider: str | None, answer: bytes | None) -> None:
    """Warn once if the answer of a provider that refuses in a 200 was not seen: litellm stopped using the client."""
    if answer is None and fact(provider, "refuses_in_answer"):
        warn_changed(
            "the client ImageBot passes (client=) on the image paths of providers that refuse in a 200 answer",
            "a NoImageError where the answer would have said why the provider refused",
        )
