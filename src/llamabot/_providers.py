"""What ImageBot sends to litellm, and the one place where litellm's errors are enriched.

litellm refuses, before any HTTP, an OpenAI parameter that a model's image config
does not list (``UnsupportedParamsError``). The documented defaults
(``response_format="url"``, ``size``, ``n``) would therefore break most models, so a
default is sent only where the model accepts it; an explicit setting the model
does not accept is dropped with a warning; ``drop_params=False`` restores
litellm's strict error.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import re
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llamabot import _models
from llamabot._exceptions import DependencyChangedWarning, NoImageError, RetiredModelWarning, UnsupportedSettingWarning
from llamabot._redact import is_secret_name, redact, scrub, secrets_to_hide

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

# The OpenAI parameters litellm checks against a model's supported list
# (``default_params`` in ``litellm.utils.get_optional_params_image_gen``).
CHECKED_PARAMS = (
    "n",
    "quality",
    "response_format",
    "size",
    "style",
    "user",
    "imageConfig",
    "tools",
    "web_search_options",
)
DOCUMENTED_DEFAULTS: dict[str, object] = {"size": "1024x1024", "n": 1, "response_format": "url"}
#: Names litellm >= 1.110 no longer routes (ensure_routable registers them again).
RETIRED_OPENAI_MODELS = frozenset(_models.UNLISTED_SHUTDOWNS)
# Which environment variable each provider reads its key from, for error hints.
KEY_ENV_VARS = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_API_KEY (and AZURE_API_BASE, AZURE_API_VERSION)",
    "openrouter": "OPENROUTER_API_KEY",
    "recraft": "RECRAFT_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "vertex_ai": "GOOGLE_APPLICATION_CREDENTIALS (plus VERTEXAI_PROJECT and VERTEXAI_LOCATION)",
    "bedrock": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_REGION_NAME)",
    "xai": "XAI_API_KEY",
    "fal_ai": "FAL_AI_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "stability": "STABILITY_API_KEY",
}


def load_litellm() -> Any:
    """Import litellm on first use, with its bundled price list.

    Left alone, litellm downloads a price list at import, retrying for seconds
    when offline. ``LITELLM_LOCAL_MODEL_COST_MAP=False`` in the environment
    restores the download.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


_warned: set[str] = set()


def warn_changed(what: str, fallback: str, package: str = "litellm") -> None:
    """Say once per process that a dependency no longer offers something ImageBot relies on."""
    if what in _warned:
        return
    _warned.add(what)
    from importlib.metadata import version

    warnings.warn(
        f"{package} {version(package)} no longer offers {what}; ImageBot falls back to {fallback}. "
        f"Please report this to llamabot-imagebot with the {package} version.",
        DependencyChangedWarning,
        stacklevel=3,
    )


@functools.lru_cache(maxsize=8)
def ensure_routable(model: str) -> None:
    """Make litellm route a bare ``dall-e-2``/``dall-e-3`` to OpenAI again, once per process.

    litellm 1.110 dropped both names from its model table, so a bare name fails with
    "LLM Provider NOT provided" before any request (``openai/dall-e-3`` still routes).
    Registering them through litellm's public ``register_model`` restores the routing
    of litellm 1.106 without adding a keyword argument to the call.
    """
    if model not in RETIRED_OPENAI_MODELS:
        return
    litellm = load_litellm()
    if model in getattr(litellm, "openai_image_generation_models", ()) or model in litellm.model_cost:
        return  # litellm <= 1.109 lists them itself
    import inspect

    entry = {model: {"litellm_provider": "openai", "mode": "image_generation"}}
    # custom_llm_provider (litellm >= 1.110) keeps register_model from probing the unknown name,
    # which prints litellm's "Provider List" banner.
    scoped = "custom_llm_provider" in inspect.signature(litellm.register_model).parameters
    litellm.register_model(entry, **({"custom_llm_provider": "openai"} if scoped else {}))


def response_cost(response: Any, model: str) -> float | None:
    """What litellm says ``response`` cost in USD, or ``None`` where it does not price it.

    litellm puts the price on every response it makes (``_hidden_params["response_cost"]``,
    as its cost-tracking docs show). Should a litellm response stop carrying it, the
    public ``litellm.completion_cost`` prices it instead, with a warning.
    """
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping):
        cost = hidden.get("response_cost")
        return float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
    litellm = load_litellm()
    if not isinstance(response, litellm.ImageResponse):
        return None  # a stand-in answer (a patched litellm.image_generation): nothing priced it
    warn_changed("the response cost on ImageResponse._hidden_params", "litellm.completion_cost()")
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception:
        return None


_QUALITIES = ("standard", "hd", "low", "medium", "high")


def price_per_image(
    model: str, size: str, quality: str | None, custom_llm_provider: str | None = None, prompt_chars: int = 0
) -> float | None:
    """litellm's list price for one image of ``model`` at ``size`` and ``quality``, or ``None`` if it has none.

    Read from ``litellm.model_cost`` (its public price table), whose image entries are keyed
    ``[provider/][quality/]WxH/model``. With no quality given, the dearest is taken: an
    estimate that keeps a spending cap must not be low. A model priced per image token
    (``gpt-image-2`` and later) is estimated from OpenAI's documented output tokens for the
    size and quality, plus the prompt's text tokens (``prompt_chars`` characters).
    """
    litellm = load_litellm()
    routed = provider_of(model, custom_llm_provider)
    name, provider = routed if routed else (model, "")
    width, _, height = str(size).partition("x")
    pixels = int(width) * int(height) if width.isdigit() and height.isdigit() else 0
    dims = f"{width}-x-{height}"
    qualities = (quality,) if quality else _QUALITIES
    prices: list[float] = []
    for prefix in ("", f"{provider}/"):
        found = _prices(litellm.model_cost, [f"{prefix}{q}/{dims}/{name}" for q in qualities], pixels)
        found = found or _prices(litellm.model_cost, [f"{prefix}{dims}/{name}", f"{prefix}{name}"], pixels)
        if found:
            prices.append(max(found))
    if prices:
        return max(prices)
    # GPT image models from gpt-image-2 on are priced per output image token only.
    entry = _models.entry_for(litellm.model_cost, model, provider, name)
    return _models.token_price_per_image(entry, size, quality, prompt_chars)


def _prices(table: Mapping[str, Any], keys: list[str], pixels: int) -> list[float]:
    return [price for key in keys if (price := _entry_price(table.get(key), pixels)) is not None]


def _entry_price(entry: Any, pixels: int) -> float | None:
    """One price-table entry's cost per image: per image, else per pixel (token prices say nothing here)."""
    if not isinstance(entry, Mapping):
        return None
    per_image = sum(float(entry.get(k) or 0) for k in ("input_cost_per_image", "output_cost_per_image"))
    if per_image > 0:
        return per_image
    per_pixel = sum(float(entry.get(k) or 0) for k in ("input_cost_per_pixel", "output_cost_per_pixel"))
    return per_pixel * pixels if per_pixel > 0 and pixels else None


# litellm reaches these providers' image endpoints through the OpenAI SDK, which retries 429,
# 5xx, timeouts and dropped connections twice on its own (max_retries=2). From litellm 1.109.0 the
# image path hands a per-call max_retries to the SDK (read from its source): ImageBot sends 0 and
# makes every attempt itself. 1.106 to 1.108 make 3 requests whatever is passed (counted on a local
# server). Azure, though also on the SDK, makes one attempt per call.
_SDK_PROVIDERS = frozenset({"openai", "xai"})
SDK_ATTEMPTS = 3
PER_CALL_MAX_RETRIES_SINCE = (1, 109, 0)
#: Set when a request showed the SDK retrying although ``max_retries=0`` was sent.
_max_retries_ignored = threading.Event()


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
    return litellm_version() >= PER_CALL_MAX_RETRIES_SINCE and not _max_retries_ignored.is_set()


def attempts_per_call(provider: str | None, sent: Mapping[str, Any]) -> int:
    """How many requests one litellm image call makes on a transient failure.

    :param provider: The provider litellm routes to.
    :param sent: The kwargs sent (a ``max_retries`` there is the SDK's, where litellm passes it on).
    """
    if provider not in _SDK_PROVIDERS:
        return 1
    asked = sent.get("max_retries")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked >= 0 and sdk_retries_switchable():
        return asked + 1
    return SDK_ATTEMPTS


def sdk_retry_count(exc: BaseException) -> int | None:
    """How many times the OpenAI SDK retried before ``exc``: its ``x-stainless-retry-count`` header."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for request in (getattr(current, "request", None), getattr(getattr(current, "response", None), "request", None)):
            try:
                count = request.headers.get("x-stainless-retry-count") if request is not None else None
            except Exception:  # a response object without a request raises on access
                count = None
            if isinstance(count, str) and count.isdigit():
                return int(count)
        current = current.__cause__ or current.__context__
    return None


def note_sdk_retries(exc: BaseException, sent: Mapping[str, Any]) -> int | None:
    """The requests one failed call made (from the SDK's header), warning once if ``max_retries=0`` was ignored."""
    retried = sdk_retry_count(exc)
    if retried is None:
        return None
    if sent.get("max_retries") == 0 and retried > 0 and not _max_retries_ignored.is_set():
        _max_retries_ignored.set()
        warn_changed(
            "a per-call max_retries on its image path (the OpenAI SDK retried although max_retries=0 was sent)",
            f"counting the SDK's own {SDK_ATTEMPTS} attempts per call",
        )
    return retried + 1


def warn_fixed_sdk_retries(provider: str | None, num_retries: int, stacklevel: int) -> None:
    """Say, once per process, that this litellm makes 3 requests a call on the SDK path whatever is asked."""
    if provider not in _SDK_PROVIDERS or sdk_retries_switchable() or "sdk-retries" in _warned:
        return
    _warned.add("sdk-retries")
    from importlib.metadata import version

    made = max(SDK_ATTEMPTS, -(-(num_retries + 1) // SDK_ATTEMPTS) * SDK_ATTEMPTS)
    warnings.warn(
        f"litellm {version('litellm')} cannot switch off the OpenAI SDK's own retries on the {provider} image "
        f"path: every call makes up to {SDK_ATTEMPTS} requests, so num_retries={num_retries} can make {made}. "
        "litellm 1.109 and later make exactly num_retries + 1: pip install -U litellm.",
        DependencyChangedWarning,
        stacklevel=stacklevel,
    )


@functools.lru_cache(maxsize=256)
def provider_of(model: str, custom_llm_provider: str | None = None) -> tuple[str, str] | None:
    """Return ``(model name, provider)`` as litellm routes ``model``, or ``None`` if it cannot."""
    litellm = load_litellm()

    try:
        name, provider, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=custom_llm_provider)
    except Exception:
        return None
    return name, str(provider)


# What litellm's image configs accept per provider (litellm 1.106.2, see shared/PROVIDERS.md):
# used only when litellm no longer answers the question itself.
_FALLBACK_PARAMS: dict[str, frozenset[str]] = {
    "openrouter": frozenset({"size", "quality", "n"}),
    "recraft": frozenset({"n", "response_format", "size", "style"}),
    "vertex_ai": frozenset({"n", "size"}),
    "gemini": frozenset({"n", "size"}),
    "bedrock": frozenset({"n", "size", "quality"}),
    "azure": frozenset({"n", "quality", "size", "user"}),
}


@functools.lru_cache(maxsize=256)
def supported_params(
    model: str, custom_llm_provider: str | None = None, base_model: str | None = None
) -> frozenset[str] | None:
    """Return the OpenAI image parameters ``model`` takes, or ``None`` for "any".

    OpenAI's own image models (bare, ``openai/``, and Azure deployments of them) follow
    OpenAI's published rules; every other model what litellm's image config for it says.

    :param model: The litellm model string.
    :param custom_llm_provider: litellm's provider override, if given.
    :param base_model: litellm's ``base_model`` (Azure deployments), if given.
    :return: The accepted parameter names, or ``None`` when litellm checks nothing
        for this model (OpenAI-compatible providers) or the lookup fails.
    """
    documented = openai_params(model, custom_llm_provider, base_model)
    if documented is not None:
        return documented
    routed = provider_of(model, custom_llm_provider)
    if routed is None:
        return None
    name, provider = routed
    return litellm_params(base_model or name, provider)


def litellm_params(name: str, provider: str) -> frozenset[str] | None:
    """What litellm's image config for ``provider`` lets ``name`` take, or ``None`` for "any".

    litellm has no public function for this (``get_supported_openai_params`` knows no
    image requests), so its config classes are asked; if they are gone or changed, the
    table litellm 1.106.2 had is used, with a ``DependencyChangedWarning``.
    """
    litellm = load_litellm()
    try:
        provider_enum = litellm.LlmProviders(provider)
    except ValueError:
        return _FALLBACK_PARAMS.get(provider)  # a provider litellm does not list: nothing to check
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
        return _FALLBACK_PARAMS.get(provider)


def request_kwargs(settings: dict[str, Any], extra: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Build the keyword arguments for ``litellm.image_generation``.

    :param settings: ``model``, ``prompt``, the constructor settings and ``timeout``;
        ``None`` values are not sent.
    :param extra: The bot's ``image_generation_kwargs``, forwarded as given.
    :return: The kwargs, and the explicit settings dropped because the model refuses them.
    """
    ensure_routable(settings["model"])
    kwargs = {key: value for key, value in settings.items() if value is not None}
    # num_retries is litellm's name, but its image generation ignores it: ImageBot retries.
    kwargs.update({key: value for key, value in extra.items() if key != "num_retries"})
    routed = provider_of(kwargs["model"], extra.get("custom_llm_provider"))
    if routed and routed[1] in _SDK_PROVIDERS and "max_retries" not in kwargs and sdk_retries_switchable():
        kwargs["max_retries"] = 0  # every attempt is ImageBot's, so num_retries=0 is one request
    if extra.get("drop_params") is False:
        return kwargs, []
    accepted = supported_params(kwargs["model"], extra.get("custom_llm_provider"), extra.get("base_model"))
    if accepted is None:
        return kwargs, []
    dropped = []
    for name in CHECKED_PARAMS:
        if kwargs.get(name) is None or name in accepted:
            continue
        # A documented default is left out silently; an explicit setting is reported.
        if kwargs.pop(name) != DOCUMENTED_DEFAULTS.get(name, _MISSING):
            dropped.append(name)
    return kwargs, dropped


_MISSING = object()


def warn_dropped(model: str, dropped: Iterable[str], stacklevel: int) -> None:
    """Warn that explicit settings were dropped because ``model`` does not accept them."""
    names = ", ".join(f"`{name}`" for name in dropped)
    if names:
        warnings.warn(
            f"{model} does not accept {names}; ImageBot dropped it from the request. "
            "Pass drop_params=False to have litellm refuse the call instead.",
            UnsupportedSettingWarning,
            stacklevel=stacklevel + 1,
        )


def openai_model(model: str) -> str | None:
    """Return the OpenAI image model ``model`` names (bare or ``openai/``), else ``None``.

    Pure string logic, so that building a bot does not import litellm.
    """
    name = model[len("openai/") :] if model.startswith("openai/") else model
    if "/" in name or not (name in RETIRED_OPENAI_MODELS or name.startswith("gpt-image")):
        return None
    return name


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def _table_entry(model: str, custom_llm_provider: str | None) -> tuple[Any, str | None, Mapping[str, Any]]:
    """``model``'s entry in litellm's model table (or None), the name litellm routes it as, and the table."""
    table = load_litellm().model_cost
    routed = provider_of(model, custom_llm_provider)
    name, provider = routed if routed else (openai_model(model), None)
    return _models.entry_for(table, model, provider, name), name, table


def not_found_note(model: str, custom_llm_provider: str | None = None) -> str | None:
    """The note for a 404 on ``model``: when litellm's table says it shut down, and what succeeds it."""
    entry, name, table = _table_entry(model, custom_llm_provider)
    return _models.not_found_note(model, name, entry, table, _today())


_lifecycle_lock = threading.Lock()
_lifecycle_warned: set[str] = set()


def warn_lifecycle(model: str, custom_llm_provider: str | None, stacklevel: int) -> None:
    """Warn once per model per process, before its first request, when litellm's table says it is shut
    down (or shuts down within 30 days), naming the table's successor."""
    with _lifecycle_lock:
        if model in _lifecycle_warned:
            return
        _lifecycle_warned.add(model)
    entry, _, table = _table_entry(model, custom_llm_provider)
    today = _today()
    text = _models.warning_text(_models.lifecycle(model, entry, today), table, today)
    if text:
        warnings.warn(text, RetiredModelWarning, stacklevel=stacklevel + 1)


# OpenAI's per-model rules for /images/generations (its published API reference);
# "params" are the checked OpenAI parameters each model takes.
_OPENAI_RULES: dict[str, dict[str, Any]] = {
    "dall-e-3": {
        "n": (1, 1),
        "size": {"1024x1024", "1792x1024", "1024x1792"},
        "quality": {"standard", "hd"},
        "prompt": 4000,
        "params": frozenset({"n", "quality", "response_format", "size", "style", "user"}),
    },
    "dall-e-2": {
        "n": (1, 10),
        "size": {"256x256", "512x512", "1024x1024"},
        "quality": {"standard"},
        "prompt": 1000,
        "params": frozenset({"n", "quality", "response_format", "size", "user"}),
    },
    "gpt-image": {
        "n": (1, 10),
        "size": {"auto", "1024x1024", "1536x1024", "1024x1536"},
        "quality": {"low", "medium", "high", "auto"},
        "prompt": 32000,
        "params": frozenset({"n", "quality", "size", "user"}),
    },
}


def openai_params(
    model: str, custom_llm_provider: str | None = None, base_model: str | None = None
) -> frozenset[str] | None:
    """The checked parameters OpenAI documents for ``model``, if it is one of OpenAI's image models.

    Covers bare and ``openai/`` names, and Azure deployments of DALL-E (a deployment
    named like ``dalle3``, or ``base_model="dall-e-3"``), as litellm 1.106 routed them.
    """
    if model.startswith("azure/") or custom_llm_provider == "azure":
        name = openai_model(base_model) if base_model else None
        if name is None and "dalle3" in model.lower().replace("-", ""):
            name = "dall-e-3"
        if name not in RETIRED_OPENAI_MODELS:
            return None  # other Azure deployments: litellm's own rules
    elif custom_llm_provider not in (None, "openai"):
        return None
    else:
        name = openai_model(base_model or model)
    found = _rules(name or "", None)
    return found[1]["params"] if found else None


def body_fallback(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The same request for a litellm that refuses parameters OpenAI documents, or ``None``.

    litellm 1.110 removed its DALL-E image configs: every OpenAI and Azure image model
    now gets gpt-image rules, which refuse ``response_format`` and ``style`` before any
    request. Those parameters are still part of OpenAI's API for DALL-E, so they move
    into ``extra_body``, which litellm sends unchecked: the body on the wire is the same.
    """
    if kwargs.get("drop_params") is False:
        return None  # the user asked for litellm's strict behaviour
    documented = openai_params(kwargs["model"], kwargs.get("custom_llm_provider"), kwargs.get("base_model"))
    moved = {k: kwargs[k] for k in CHECKED_PARAMS if documented and k in documented and kwargs.get(k) is not None}
    if not moved:
        return None
    rest = {k: v for k, v in kwargs.items() if k not in moved}
    return {**rest, "extra_body": {**moved, **(kwargs.get("extra_body") or {})}}


def tolerant(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``litellm.image_generation`` that retries once with ``body_fallback`` when litellm refuses a parameter.

    The refusal happens before any request, so nothing is sent twice.
    """

    def call(**kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except load_litellm().UnsupportedParamsError:
            fallback = body_fallback(kwargs)
            if fallback is None:
                raise
        return fn(**fallback)

    return call


def bounded(fn: Callable[..., Any], provider: str | None) -> Callable[..., Any]:
    """``litellm.image_generation`` whose bedrock requests end at their timeout.

    litellm's sync bedrock image path ignores ``timeout`` (1.106 to 1.110): its shared HTTP
    client waits as long as the server does, so an attempt ImageBot gave up on would hold a
    thread and a connection. A client of litellm's own kind, made for the attempt with its
    timeout and closed after it, bounds it through the public ``client=`` parameter.
    """
    if provider != "bedrock":
        return fn

    def call(**kwargs: Any) -> Any:
        client = None if "client" in kwargs else _bedrock_client(kwargs.get("timeout"))
        if client is None:
            return fn(**kwargs)
        try:
            return fn(**kwargs, client=client)
        finally:
            client.close()

    return call


def _bedrock_client(timeout: Any) -> Any:
    try:
        from litellm.llms.custom_httpx.http_handler import HTTPHandler
    except ImportError:
        warn_changed(
            "the HTTP client class ImageBot gives bedrock to bound its requests (HTTPHandler)",
            "bedrock's own client: a timed-out attempt may finish in a background thread",
        )
        return None
    return HTTPHandler(timeout=timeout)


def atolerant(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``tolerant`` for ``litellm.aimage_generation``."""

    async def call(**kwargs: Any) -> Any:
        try:
            return await fn(**kwargs)
        except load_litellm().UnsupportedParamsError:
            fallback = body_fallback(kwargs)
            if fallback is None:
                raise
        return await fn(**fallback)

    return call


def _rules(model: str, base_model: str | None) -> tuple[str, dict[str, Any]] | None:
    name = openai_model(base_model or model)
    if name is None:
        return None
    if name.startswith("gpt-image"):
        return name, _OPENAI_RULES["gpt-image"]
    return name, _OPENAI_RULES[name]


RESPONSE_FORMATS = ("url", "b64_json")
#: What GPT image models answer in (OpenAI's API reference; png is the default).
OUTPUT_FORMATS = ("png", "jpeg", "webp", "gif", "svg")


def check_bot_settings(
    model: Any, size: Any, quality: Any, n: Any, response_format: Any, timeout: Any, extra: dict[str, Any]
) -> None:
    """Reject settings no provider accepts, then what OpenAI's models are documented to refuse.

    :raises ValueError: For a value out of range, naming the setting and what it accepts.
    :raises TypeError: For a value of the wrong type.
    """
    if not isinstance(model, str) or not model.strip():
        msg = f"model must be a non-empty string such as 'gpt-image-2', not {model!r}."
        raise ValueError(msg)
    if size is not None and (not isinstance(size, str) or not (re.fullmatch(r"\d+[xX]\d+", size) or size == "auto")):
        msg = f"size must look like '1024x1024' (width x height) or be 'auto', not {size!r}."
        raise ValueError(msg)
    if isinstance(n, bool) or not isinstance(n, int):
        msg = f"n must be a whole number, not {type(n).__name__}."
        raise TypeError(msg)
    if n < 1:
        msg = f"n must be at least 1, not {n}."
        raise ValueError(msg)
    if response_format is not None and response_format not in RESPONSE_FORMATS:
        msg = f"response_format must be 'url' or 'b64_json', not {response_format!r}."
        raise ValueError(msg)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        msg = f"timeout must be a number of seconds, not {type(timeout).__name__}."
        raise TypeError(msg)
    if not timeout > 0:
        msg = f"timeout must be a positive number of seconds, not {timeout}."
        raise ValueError(msg)
    if quality is not None and not isinstance(quality, str):
        msg = f"quality must be a string such as 'high' or 'hd', not {type(quality).__name__}."
        raise TypeError(msg)
    check_settings(model, size, quality, n, extra)


def check_settings(model: str, size: str | None, quality: str | None, n: int, extra: dict[str, Any]) -> None:
    """Refuse settings that OpenAI's image models are documented not to accept.

    :raises ValueError: Naming the setting, the model and what it accepts.
    """
    found = _rules(model, extra.get("base_model"))
    if found is None:
        return
    name, rules = found
    low, high = rules["n"]
    if not low <= n <= high:
        hint = (
            " (call the bot again for more, or use a GPT image model such as gpt-image-2, which takes n up to 10)"
            if high == 1
            else ""
        )
        msg = f"{name} makes {low} to {high} images per request, not n={n}{hint}."
        raise ValueError(msg.replace("1 to 1 images", "one image"))
    # gpt-image-2 takes arbitrary WIDTHxHEIGHT sizes.
    if size is not None and size not in rules["size"] and not name.startswith("gpt-image-2"):
        msg = f"{name} does not make size {size!r}; use one of {', '.join(sorted(rules['size']))}."
        raise ValueError(msg)
    if quality is not None and quality not in rules["quality"] and quality != "auto":
        msg = f"{name} does not take quality {quality!r}; use one of {', '.join(sorted(rules['quality']))}."
        raise ValueError(msg)
    style = extra.get("style")
    if style is not None and name == "dall-e-3" and style not in ("vivid", "natural"):
        msg = f"dall-e-3 takes style 'vivid' or 'natural', not {style!r}."
        raise ValueError(msg)
    output_format = extra.get("output_format")
    if output_format is not None and name.startswith("gpt-image"):
        if output_format not in OUTPUT_FORMATS:
            msg = f"{name} takes output_format {', '.join(map(repr, OUTPUT_FORMATS))}, not {output_format!r}."
            raise ValueError(msg)
        if extra.get("background") == "transparent" and output_format == "jpeg":
            msg = "A transparent background needs output_format 'png', 'webp', 'gif' or 'svg', not 'jpeg'."
            raise ValueError(msg)
    compression = extra.get("output_compression")
    if compression is not None and not (isinstance(compression, int) and 0 <= compression <= 100):
        msg = f"output_compression must be a whole number from 0 to 100, not {compression!r}."
        raise ValueError(msg)


def check_prompt(model: str, prompt: str, extra: dict[str, Any]) -> None:
    """Refuse a prompt longer than an OpenAI image model accepts."""
    found = _rules(model, extra.get("base_model"))
    if found is not None and len(prompt) > found[1]["prompt"]:
        name, rules = found
        msg = f"The prompt has {len(prompt):,} characters; {name} accepts at most {rules['prompt']:,}."
        raise ValueError(msg)


def public_settings(sent: dict[str, Any]) -> dict[str, Any]:
    """Settings fit to store in a file or a history: no prompt, model, endpoint or secret at any depth.

    The endpoint (``api_base``) is left out: an Azure resource host or a private gateway must not
    travel inside every saved image; the provider's name is stored beside the settings instead.
    """
    public = {}
    for key, value in sent.items():
        if value is None or key in ("prompt", "model", "api_key", "api_base") or is_secret_name(key):
            continue
        public[key] = redact(value, key)
    return public


def enrich(exc: BaseException, model: str, api_key: str | None, extra: dict[str, Any]) -> None:
    """Add hints to a litellm exception and remove any secret from its text, in place.

    :param exc: The exception litellm raised; its type is kept.
    :param model: The model the call used.
    :param api_key: The bot's API key, to scrub.
    :param extra: The bot's extra kwargs, whose credentials are scrubbed too.
    """
    hidden = secrets_to_hide({"api_key": api_key}, extra)
    _scrub_exception(exc, hidden)
    text = str(exc)
    notes = getattr(exc, "__notes__", [])
    litellm = load_litellm()
    if "model_not_found" in text or isinstance(exc, litellm.NotFoundError):
        note = not_found_note(model, extra.get("custom_llm_provider"))
        if note and note not in notes:
            add_note(exc, note)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.AuthenticationError) or status == 401 or "api_key" in text.lower():
        routed = provider_of(model, extra.get("custom_llm_provider"))
        env = KEY_ENV_VARS.get(routed[1]) if routed else None
        hint = f"Set {env} in the environment (in Python, ImageBot(api_key=...) works too)." if env else None
        if hint and hint not in notes:
            add_note(exc, hint)
    failure = connection_failure(exc)
    if failure is not None:
        host, reason = failure
        note = (
            f"Could not connect to {host} ({reason}). Check the network connection, the host name "
            "(api_base, if you set one) and any proxy settings (HTTPS_PROXY)."
        )
        if note not in notes:
            add_note(exc, note)


def connection_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(host, what happened)`` when ``exc`` comes from failing to reach the provider, else None."""
    import socket

    import httpx

    host, reason = None, None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.RequestError) and host is None:
            with contextlib.suppress(RuntimeError):  # .request is unset on hand-made errors
                host = current.request.url.host
        if isinstance(current, socket.gaierror):
            reason = "the host name could not be resolved"
        elif isinstance(current, ConnectionRefusedError):
            reason = "the connection was refused"
        elif isinstance(current, (httpx.ConnectError, httpx.ConnectTimeout)) and reason is None:
            reason = "no connection could be made"
        current = current.__cause__ or current.__context__
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


@contextlib.contextmanager
def refined_errors(model: str, api_key: str | None, extra: dict[str, Any]) -> Iterator[None]:
    """The one place litellm's exceptions are changed: notes added, secrets scrubbed, types kept.

    A 200 answer carrying an error object (litellm's ``APIError`` with a string code)
    becomes ``NoImageError``, the reference's ``ValueError``.
    """
    try:
        yield
    except Exception as exc:
        enrich(exc, model, api_key, extra)
        no_image = no_image_error(exc, model)
        if no_image is not None:
            raise no_image from exc
        raise


def no_image_error(exc: BaseException, model: str) -> NoImageError | None:
    """The ``ValueError`` for a 200 answer that carried an error object instead of an image.

    litellm raises those as ``APIError`` whose ``status_code`` is the provider's error
    code (a string such as ``"content_policy_violation"``), with the message lost.
    """
    code = getattr(exc, "status_code", None)
    if not isinstance(code, str) or not code or code.isdigit():
        return None
    hint = (
        " Its safety system refused the prompt: rephrase it."
        if any(w in code for w in ("policy", "safety", "moderation"))
        else ""
    )
    return NoImageError(f"{model} answered without an image; the provider reported error code {code!r}.{hint}")


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on Python 3.10 (which keeps ``__notes__`` but cannot add to it)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # pragma: no cover - Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def _scrub_exception(exc: BaseException, hidden: list[str]) -> None:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while hidden and pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(scrub(a, hidden) if isinstance(a, str) else a for a in current.args)
        for attr in ("message", "body", "llm_provider_message"):
            value = getattr(current, attr, None)
            if isinstance(value, str):
                with contextlib.suppress(AttributeError):  # read-only on some exception types
                    setattr(current, attr, scrub(value, hidden))
        notes = getattr(current, "__notes__", None)
        if notes:
            current.__notes__ = [scrub(note, hidden) for note in notes]  # type: ignore[attr-defined]
        pending += [current.__cause__, current.__context__]
