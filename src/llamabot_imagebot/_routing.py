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
import os
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
#: ``refuses_in_answer``: a refusal comes as a 200 whose reason litellm drops (read by ``_transport``);
#: ``timeout_holds``: a generation's ``timeout`` ends a stalled request on litellm's sync path (or on the
#: client ImageBot gives the attempt), on every litellm in range (tested on a server that never answers);
#: ``empty``: what an answer without an image usually means there (litellm drops the provider's words);
#: ``edit``: what its edit endpoint takes, as litellm routes it: ``images`` (how many), ``mask``.
PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {
        "keys": ("OPENAI_API_KEY",),
        "sdk_retries": True,
        "timeout_holds": True,
        "edit": {"images": _openai.EDIT_MAX_IMAGES, "mask": True, "image_bytes": _openai.EDIT_MAX_IMAGE_BYTES},
    },
    "azure": {
        "keys": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
        "hint": "AZURE_API_KEY (and AZURE_API_BASE, AZURE_API_VERSION)",
        "params": frozenset({"n", "quality", "size", "user"}),
        "timeout_holds": True,
        "edit": {"images": _openai.EDIT_MAX_IMAGES, "mask": True, "image_bytes": _openai.EDIT_MAX_IMAGE_BYTES},
    },
    "openrouter": {
        "keys": ("OPENROUTER_API_KEY",),
        "params": frozenset({"size", "quality", "n"}),
        "timeout_holds": True,
        "empty": "OpenRouter's model answered with text only: it declined the prompt or could not draw it.",
    },
    "recraft": {
        "keys": ("RECRAFT_API_KEY",),
        "params": frozenset({"n", "response_format", "size", "style"}),
        "timeout_holds": True,
        "edit": {"images": 1, "mask": False, "image_bytes": 5 * 1024 * 1024},
    },
    "gemini": {
        "keys": ("GEMINI_API_KEY",),
        "params": frozenset({"n", "size"}),
        "empty": "Gemini answers without an image when its safety filter blocks the prompt.",
        "refuses_in_answer": True,
        "timeout_holds": True,
        "edit": {"images": 14, "mask": False, "image_bytes": 20 * 1024 * 1024},
    },
    "vertex_ai": {
        "hint": "GOOGLE_APPLICATION_CREDENTIALS (plus VERTEXAI_PROJECT and VERTEXAI_LOCATION)",
        "params": frozenset({"n", "size"}),
        "empty": "Vertex answers without an image when its safety filter blocks the prompt.",
        "refuses_in_answer": True,
        "timeout_holds": True,
        "edit": {"images": 14, "mask": True, "image_bytes": 20 * 1024 * 1024},
    },
    "bedrock": {
        "hint": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_REGION_NAME)",
        "params": frozenset({"n", "size", "quality"}),
        "timeout_holds": True,  # through the client ImageBot gives each attempt (_transport.attempt_client)
        "edit": {"images": 1, "mask": True, "image_bytes": 10 * 1024 * 1024},
    },
    "xai": {"keys": ("XAI_API_KEY",), "sdk_retries": True, "timeout_holds": True},
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
    import inspect  # once per process, to read litellm's register_model signature

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
    return kwargs, drop_refused(kwargs, settings)


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


#: The OpenAI parameters litellm's edit configs check (``ImageEditOptionalRequestParams``).
EDIT_CHECKED = (
    "background",
    "input_fidelity",
    "n",
    "output_format",
    "quality",
    "response_format",
    "size",
    "style",
    "user",
)
#: What litellm and ImageBot keep to themselves: never a field of an edit's form (litellm 1.110 would
#: send ``drop_params`` as one on the OpenAI path).
_NOT_FORM_FIELDS = frozenset({"num_retries", "drop_params", "additional_drop_params", "max_retries"})


def edit_config(settings: Settings, provider: str) -> Any:
    """litellm's edit config for the settings' model, or None where litellm cannot edit with it."""
    return _edit_config(settings.model, settings.custom_llm_provider, provider)


@functools.lru_cache(maxsize=64)
def _edit_config(model: str, custom_llm_provider: str | None, provider: str) -> Any:
    """Looked up once per model: a call checks it before sending and builds its kwargs from it."""
    litellm = load_litellm()
    name = (provider_of(model, custom_llm_provider) or (model, provider))[0]
    try:
        return litellm.ProviderConfigManager.get_provider_image_edit_config(
            model=name, provider=litellm.LlmProviders(provider)
        )
    except ValueError:
        return None
    except Exception:
        warn_changed("the image-edit lookup ImageBot uses (ProviderConfigManager)", "trying the edit")
        return True


def editors() -> list[str]:
    """The providers in ``PROVIDERS`` that litellm routes edits to."""
    return [name for name, facts in PROVIDERS.items() if "edit" in facts]


def check_edit(settings: Settings, provider: str, operation: Any) -> None:
    """Refuse, before anything is sent, an edit litellm cannot route or the provider documents it refuses.

    :raises ValueError: Where litellm cannot edit with this provider (naming those that can), or
        for more images, a mask, or an image larger than the provider takes.
    """
    if edit_config(settings, provider) is None:
        msg = (
            f"litellm cannot edit images with {provider} ({settings.model}); nothing was sent. "
            f"Providers it can edit with: {', '.join(editors())}."
        )
        raise ValueError(msg)
    limits = fact(provider, "edit") or {}
    most = limits.get("images")
    if most is not None and len(operation.images) > most:
        count = len(operation.images)
        msg = f"{provider} edits with at most {most} image{'s' * (most != 1)}, not {count}; nothing was sent."
        raise ValueError(msg)
    if operation.mask is not None and limits.get("mask") is False:
        with_masks = [name for name, facts in PROVIDERS.items() if facts.get("edit", {}).get("mask")]
        msg = f"{provider} takes no mask for an edit; nothing was sent. Providers that do: {', '.join(with_masks)}."
        raise ValueError(msg)
    largest = limits.get("image_bytes")
    for image in (*operation.images, *([operation.mask] if operation.mask is not None else [])):
        if largest is not None and len(image.data) > largest:
            msg = (
                f"{image.name} is {len(image.data):,} bytes; {provider} takes at most {largest:,} bytes per image; "
                "nothing was sent. Make it smaller (a lower resolution, or JPEG/WEBP)."
            )
            raise ValueError(msg)


def edit_kwargs(settings: Settings, prompt: str) -> tuple[dict[str, Any], list[str]]:
    """The kwargs for ``litellm.image_edit`` (without the inputs), and the explicit settings dropped.

    The constructor's defaults (``response_format="url"``, ``size``, ``n``) are sent only where the
    model's edit config takes them; any other extra kwarg goes to the provider as it does for
    generation (on OpenAI and Azure, a field of the form).
    """
    kwargs = {key: value for key, value in settings.request(prompt).items() if value is not None}
    kwargs.update({key: value for key, value in settings.extra.items() if key not in _NOT_FORM_FIELDS})
    config = edit_config(settings, provider_name(settings) or "")
    try:
        accepted = (
            frozenset(config.get_supported_openai_params(kwargs["model"])) if config not in (None, True) else None
        )
    except Exception:
        accepted = None
    if accepted is None or settings.extra.get("drop_params") is False:
        return kwargs, []
    dropped = []
    for name in EDIT_CHECKED:
        if kwargs.get(name) is None or name in accepted:
            continue
        if kwargs.pop(name) != _openai.DOCUMENTED_DEFAULTS.get(name, _MISSING):
            dropped.append(name)
    return kwargs, dropped


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
