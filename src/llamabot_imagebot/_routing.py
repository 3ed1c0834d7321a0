"""Where a request goes and what it may carry: routing, accepted parameters, prices, lifecycles.

Every fact keyed by provider lives in one table, ``PROVIDERS``. litellm refuses, before any
HTTP, an OpenAI parameter that a model's image config does not list
(``UnsupportedParamsError``); the documented defaults (``response_format="url"``, ``size``,
``n``) would therefore break most models, so a default is sent only where the model accepts
it, an explicit setting the model does not accept is dropped with a warning, and
``drop_params=False`` restores litellm's strict error.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import inspect
import os
import re
import threading
from collections.abc import Mapping

from llamabot_imagebot import _models, _openai
from llamabot_imagebot._exceptions import (
    DependencyChangedWarning,
    RetiredModelWarning,
    UnknownModelError,
    UnsupportedSettingWarning,
    warn,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from llamabot_imagebot._settings import Settings

#: Facts per provider (litellm's provider name):
#: ``keys``: the environment variables its key is read from (any one will do);
#: ``hint``: how to give it credentials, for error notes;
#: ``params``: what litellm 1.106.2's image config accepted, used only when litellm no longer says;
#: ``sdk_retries``: litellm reaches it through the OpenAI SDK, which retries twice on its own;
#: ``empty``: what an answer without an image usually means there (litellm drops the provider's words);
#: ``edit``: what its edit endpoint takes, as litellm routes it: ``images`` (how many), ``mask``.
PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {
        "keys": ("OPENAI_API_KEY",),
        "sdk_retries": True,
        "edit": {"images": _openai.EDIT_MAX_IMAGES, "mask": True, "image_bytes": _openai.EDIT_MAX_IMAGE_BYTES},
    },
    "azure": {
        "keys": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
        "hint": "AZURE_API_KEY (and AZURE_API_BASE, AZURE_API_VERSION)",
        "params": frozenset({"n", "quality", "size", "user"}),
        "edit": {"images": _openai.EDIT_MAX_IMAGES, "mask": True, "image_bytes": _openai.EDIT_MAX_IMAGE_BYTES},
    },
    "openrouter": {
        "keys": ("OPENROUTER_API_KEY",),
        "params": frozenset({"size", "quality", "n"}),
        "empty": "OpenRouter's model answered with text only: it declined the prompt or could not draw it.",
    },
    "recraft": {
        "keys": ("RECRAFT_API_KEY",),
        "params": frozenset({"n", "response_format", "size", "style"}),
        "edit": {"images": 1, "mask": False, "image_bytes": 5 * 1024 * 1024},
    },
    "gemini": {
        "keys": ("GEMINI_API_KEY",),
        "params": frozenset({"n", "size"}),
        "empty": "Gemini answers without an image when its safety filter blocks the prompt.",
        "edit": {"images": 14, "mask": False, "image_bytes": 20 * 1024 * 1024},
    },
    "vertex_ai": {
        "hint": "GOOGLE_APPLICATION_CREDENTIALS (plus VERTEXAI_PROJECT and VERTEXAI_LOCATION)",
        "params": frozenset({"n", "size"}),
        "empty": "Vertex answers without an image when its safety filter blocks the prompt.",
        "edit": {"images": 14, "mask": True, "image_bytes": 20 * 1024 * 1024},
    },
    "bedrock": {
        "hint": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_REGION_NAME)",
        "params": frozenset({"n", "size", "quality"}),
        "edit": {"images": 1, "mask": True, "image_bytes": 10 * 1024 * 1024},
    },
    "xai": {"keys": ("XAI_API_KEY",), "sdk_retries": True},
    "fal_ai": {"keys": ("FAL_AI_API_KEY",)},
    "together_ai": {"keys": ("TOGETHERAI_API_KEY",)},
    "stability": {"keys": ("STABILITY_API_KEY",)},
}


def fact(provider: str | None, name: str, default: Any = None) -> Any:
    """One fact from ``PROVIDERS``."""
    return PROVIDERS.get(provider or "", {}).get(name, default)


def key_hint(provider: str | None) -> str | None:
    """Where ``provider``'s credentials come from, for error notes."""
    keys = fact(provider, "keys")
    return fact(provider, "hint") or (" or ".join(keys) if keys else None)


def load_litellm() -> Any:
    """Import litellm on first use, with its bundled price list and without its console banner.

    Left alone, litellm downloads a price list at import, retrying for seconds when offline
    (``LITELLM_LOCAL_MODEL_COST_MAP=False`` in the environment restores the download), and
    prints a "Give Feedback / Get Help" banner to stdout on every failed call. Its documented
    switch for the banner, ``litellm.suppress_debug_info``, is the one litellm setting ImageBot
    changes: it changes only what litellm prints (``IMAGEBOT_LITELLM_BANNER=1`` keeps it).
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    if not _banner_set.is_set():
        _banner_set.set()
        if os.environ.get("IMAGEBOT_LITELLM_BANNER", "").strip().lower() not in {"1", "true", "yes", "on"}:
            litellm.suppress_debug_info = True
    return litellm


_banner_set = threading.Event()
_warned: set[str] = set()


def warn_changed(what: str, fallback: str, package: str = "litellm") -> None:
    """Say once per process that a dependency no longer offers something ImageBot relies on."""
    if what in _warned:
        return
    _warned.add(what)
    from importlib.metadata import version

    warn(
        f"{package} {version(package)} no longer offers {what}; ImageBot falls back to {fallback}. "
        "Results stay correct; a newer llamabot-imagebot may use the new way (pip install -U llamabot-imagebot).",
        DependencyChangedWarning,
    )


# Routing -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def provider_of(model: str, custom_llm_provider: str | None = None) -> tuple[str, str] | None:
    """``(model name, provider)`` as litellm routes ``model``, or ``None`` if it cannot."""
    litellm = load_litellm()
    try:
        name, provider, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=custom_llm_provider)
    except Exception:
        return None
    return name, str(provider)


def provider_name(settings: Settings) -> str | None:
    routed = provider_of(settings.model, settings.custom_llm_provider)
    return routed[1] if routed else None


@functools.lru_cache(maxsize=8)
def ensure_routable(model: str) -> None:
    """Make litellm route a bare ``dall-e-2``/``dall-e-3`` to OpenAI again, once per process.

    litellm 1.110 dropped both names from its model table, so a bare name fails with "LLM
    Provider NOT provided" before any request (``openai/dall-e-3`` still routes). Registering
    them through litellm's public ``register_model`` restores the routing of litellm 1.106.
    """
    if model not in _openai.UNLISTED_MODELS:
        return
    litellm = load_litellm()
    if model in getattr(litellm, "openai_image_generation_models", ()) or model in litellm.model_cost:
        return  # litellm <= 1.109 lists them itself
    entry = {model: {"litellm_provider": "openai", "mode": "image_generation"}}
    # custom_llm_provider (litellm >= 1.110) keeps register_model from probing the unknown name.
    scoped = "custom_llm_provider" in inspect.signature(litellm.register_model).parameters
    litellm.register_model(entry, **({"custom_llm_provider": "openai"} if scoped else {}))


def require_known(settings: Settings) -> str:
    """The provider litellm routes the settings' model to; ``UnknownModelError`` naming close names if none."""
    ensure_routable(settings.model)
    provider = provider_name(settings)
    if provider is not None:
        return provider
    table = load_litellm().model_cost
    names = [
        key for key, entry in table.items() if isinstance(entry, Mapping) and entry.get("mode") == "image_generation"
    ]
    close = difflib.get_close_matches(settings.model, names, n=3, cutoff=0.6)
    bare = [name.split("/")[-1] for name in names]
    close += [name for name in difflib.get_close_matches(settings.model, bare, n=3, cutoff=0.6) if name not in close]
    hint = f" Did you mean {', '.join(repr(name) for name in close[:3])}?" if close else ""
    msg = (
        f"litellm does not know the model {settings.model!r}, so it cannot tell which provider to send it to.{hint} "
        "`imagebot models` lists the image models litellm knows; a model of another provider needs its prefix "
        "(such as 'openrouter/google/gemini-2.5-flash-image'), or custom_llm_provider=..."
    )
    raise UnknownModelError(msg)


# Accepted parameters -------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def supported_params(
    model: str, custom_llm_provider: str | None = None, base_model: str | None = None
) -> frozenset[str] | None:
    """The OpenAI image parameters ``model`` takes, or ``None`` for "any".

    OpenAI's own image models (bare, ``openai/``, and Azure deployments of them) follow
    OpenAI's published rules; every other model what litellm's image config for it says.
    """
    documented = _openai.params(model, custom_llm_provider, base_model)
    if documented is not None:
        return documented
    routed = provider_of(model, custom_llm_provider)
    if routed is None:
        return None
    name, provider = routed
    return litellm_params(base_model or name, provider)


def litellm_params(name: str, provider: str) -> frozenset[str] | None:
    """What litellm's image config for ``provider`` lets ``name`` take, or ``None`` for "any".

    litellm has no public function for this, so its config classes are asked; if they are gone
    or changed, the table litellm 1.106.2 had is used, with a ``DependencyChangedWarning``.
    """
    litellm = load_litellm()
    try:
        provider_enum = litellm.LlmProviders(provider)
    except ValueError:
        return fact(provider, "params")  # a provider litellm does not list: nothing to check
    try:
        if provider == "vertex_ai":
            return frozenset({"n", "size"})  # hard-coded in litellm's get_optional_params_image_gen
        if provider == "bedrock":
            config_class = litellm.BedrockImageGeneration.get_config_class(model=name)
            return frozenset(config_class.get_supported_openai_params(model=name))
        config = litellm.ProviderConfigManager.get_provider_image_generation_config(model=name, provider=provider_enum)
        return None if config is None else frozenset(config.get_supported_openai_params(model=name))
    except Exception:
        warn_changed(
            "the image-parameter lookup ImageBot uses (ProviderConfigManager)",
            "its own table of what each provider accepts",
        )
        return fact(provider, "params")


_MISSING = object()


def generation_kwargs(settings: Settings, prompt: str) -> tuple[dict[str, Any], list[str]]:
    """The kwargs for ``litellm.image_generation``, and the explicit settings dropped because the model refuses them.

    ``None`` values are not sent; the extra kwargs are forwarded as given, but ``num_retries``
    (litellm's name, which its image generation ignores: ImageBot retries).
    """
    kwargs = {key: value for key, value in settings.request(prompt).items() if value is not None}
    kwargs.update({key: value for key, value in settings.extra.items() if key != "num_retries"})
    return with_retries_off(kwargs, settings), drop_refused(kwargs, settings)


def with_retries_off(kwargs: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Where litellm passes a per-call ``max_retries`` to the OpenAI SDK, send 0: every attempt is ImageBot's."""
    if fact(provider_name(settings), "sdk_retries") and "max_retries" not in kwargs and sdk_retries_switchable():
        kwargs["max_retries"] = 0
    return kwargs


def drop_refused(kwargs: dict[str, Any], settings: Settings) -> list[str]:
    """Remove, in place, the checked parameters the model refuses; return the explicit ones dropped."""
    if settings.extra.get("drop_params") is False:
        return []
    accepted = supported_params(settings.model, settings.custom_llm_provider, settings.extra.get("base_model"))
    if accepted is None:
        return []
    dropped = []
    for name in _openai.CHECKED_PARAMS:
        if kwargs.get(name) is None or name in accepted:
            continue
        # A documented default is left out silently; an explicit setting is reported.
        if kwargs.pop(name) != _openai.DOCUMENTED_DEFAULTS.get(name, _MISSING):
            dropped.append(name)
    return dropped


def warn_dropped(model: str, dropped: Iterable[str]) -> None:
    """Warn that explicit settings were dropped because ``model`` does not accept them."""
    names = ", ".join(f"`{name}`" for name in dropped)
    if names:
        warn(
            f"{model} does not accept {names}; ImageBot dropped it from the request. "
            "Pass drop_params=False to have litellm refuse the call instead.",
            UnsupportedSettingWarning,
        )


def body_fallback(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The same request for a litellm that refuses parameters OpenAI documents, or ``None``.

    litellm 1.110 removed its DALL-E image configs: every OpenAI and Azure image model now gets
    gpt-image rules, which refuse ``response_format`` and ``style`` before any request. Those
    parameters are still part of OpenAI's API for DALL-E, so they move into ``extra_body``,
    which litellm sends unchecked: the body on the wire is the same.
    """
    if kwargs.get("drop_params") is False or "model" not in kwargs:
        return None  # the user asked for litellm's strict behaviour
    documented = _openai.params(kwargs["model"], kwargs.get("custom_llm_provider"), kwargs.get("base_model"))
    moved = {
        k: kwargs[k] for k in _openai.CHECKED_PARAMS if documented and k in documented and kwargs.get(k) is not None
    }
    if not moved:
        return None
    rest = {k: v for k, v in kwargs.items() if k not in moved}
    return {**rest, "extra_body": {**moved, **(kwargs.get("extra_body") or {})}}


def bedrock_client(timeout: Any) -> Any:
    """An HTTP client of litellm's own kind for one bedrock attempt, or None if litellm no longer has it.

    litellm's sync bedrock image path ignores ``timeout`` (1.106 to 1.110): its shared client
    waits as long as the server does. A client made for the attempt with its timeout, passed
    through the public ``client=`` parameter and closed after, bounds it.
    """
    try:
        from litellm.llms.custom_httpx.http_handler import HTTPHandler
    except ImportError:
        warn_changed(
            "the HTTP client class ImageBot gives bedrock to bound its requests (HTTPHandler)",
            "bedrock's own client: a timed-out attempt may finish in a background thread",
        )
        return None
    return HTTPHandler(timeout=timeout)


# The OpenAI SDK's own retries ----------------------------------------------------------
# litellm reaches the openai and xai image endpoints through the OpenAI SDK, which retries 429,
# 5xx, timeouts and dropped connections twice on its own (max_retries=2). From litellm 1.109.0
# the image path hands a per-call max_retries to the SDK (read from its source): ImageBot sends 0
# and makes every attempt itself. 1.106 to 1.108 make 3 requests whatever is passed (counted on a
# local server). Azure, though also on the SDK, makes one attempt per call.
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
        warn_changed(
            "a per-call max_retries on its image path (the OpenAI SDK retried although max_retries=0 was sent)",
            f"counting the SDK's own {SDK_ATTEMPTS} attempts per call",
        )


def warn_fixed_sdk_retries(settings: Settings) -> None:
    """Say, once per process, that this litellm makes 3 requests a call on the SDK path whatever is asked."""
    retries = settings.extra.get("num_retries")
    provider = provider_name(settings)
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


# Lifecycles ----------------------------------------------------------------------------


def today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def _table_entry(model: str, custom_llm_provider: str | None) -> tuple[Any, str | None, Mapping[str, Any]]:
    """``model``'s entry in litellm's model table (or None), the name litellm routes it as, and the table."""
    table = load_litellm().model_cost
    routed = provider_of(model, custom_llm_provider)
    name, provider = routed if routed else (_openai.model_name(model), None)
    return _models.entry_for(table, model, provider, name), name, table


def not_found_note(model: str, custom_llm_provider: str | None = None) -> str | None:
    """The note for a 404 on ``model``: when litellm's table says it shut down, and what succeeds it."""
    entry, name, table = _table_entry(model, custom_llm_provider)
    return _models.not_found_note(model, name, entry, table, today())


_lifecycle_lock = threading.Lock()
_lifecycle_warned: set[str] = set()


def warn_lifecycle(model: str, custom_llm_provider: str | None) -> None:
    """Warn once per model per process, before its first request, when litellm's table says it is shut
    down (or shuts down within 30 days), naming the table's successor."""
    with _lifecycle_lock:
        if model in _lifecycle_warned:
            return
        _lifecycle_warned.add(model)
    entry, _, table = _table_entry(model, custom_llm_provider)
    now = today()
    text = _models.warning_text(_models.lifecycle(model, entry, now), table, now)
    if text:
        warn(text, RetiredModelWarning)


def litellm_function(litellm: Any, kind: str, asynchronous: bool) -> Callable[..., Any]:
    """litellm's public function for an operation, looked up at call time (so a test's patch takes effect)."""
    name = {"generate": "image_generation", "edit": "image_edit"}[kind]
    return getattr(litellm, f"a{name}" if asynchronous else name)
