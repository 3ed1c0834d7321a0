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
import functools
import os
import re
import warnings
from typing import TYPE_CHECKING, Any

from llamabot._exceptions import NoImageError, UnsupportedSettingWarning

if TYPE_CHECKING:
    from collections.abc import Iterable

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
RETIRED_OPENAI_MODELS = frozenset({"dall-e-2", "dall-e-3"})
REPLACEMENT_HINT = (
    "OpenAI shut down dall-e-2 and dall-e-3 on 2026-05-12. Use ImageBot(model='gpt-image-1') "
    "(or 'gpt-image-1-mini', 'gpt-image-1.5'); GPT image models return base64, which ImageBot handles."
)
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
_SECRET_NAME = re.compile(r"key|secret|token|password|credential|auth", re.IGNORECASE)
_SECRET_ENV = re.compile(r"(_API_KEY|_KEY|_SECRET|_SECRET_ACCESS_KEY|_TOKEN|_PASSWORD)$")


def load_litellm() -> Any:
    """Import litellm on first use, with its bundled price list.

    Left alone, litellm downloads a price list at import, retrying for seconds
    when offline. ``LITELLM_LOCAL_MODEL_COST_MAP=False`` in the environment
    restores the download.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def is_secret_name(name: str) -> bool:
    """Whether a keyword argument's name suggests it holds a credential."""
    return bool(_SECRET_NAME.search(name))


@functools.lru_cache(maxsize=256)
def provider_of(model: str, custom_llm_provider: str | None = None) -> tuple[str, str] | None:
    """Return ``(model name, provider)`` as litellm routes ``model``, or ``None`` if it cannot."""
    litellm = load_litellm()

    try:
        name, provider, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=custom_llm_provider)
    except Exception:
        return None
    return name, str(provider)


@functools.lru_cache(maxsize=256)
def supported_params(
    model: str, custom_llm_provider: str | None = None, base_model: str | None = None
) -> frozenset[str] | None:
    """Return the OpenAI image parameters litellm lets ``model`` take, or ``None`` for "any".

    :param model: The litellm model string.
    :param custom_llm_provider: litellm's provider override, if given.
    :param base_model: litellm's ``base_model`` (Azure deployments), if given.
    :return: The accepted parameter names, or ``None`` when litellm checks nothing
        for this model (OpenAI-compatible providers) or the lookup fails.
    """
    routed = provider_of(model, custom_llm_provider)
    if routed is None:
        return None
    name, provider = routed
    name = base_model or name
    litellm = load_litellm()

    try:
        config = litellm.ProviderConfigManager.get_provider_image_generation_config(
            model=name, provider=litellm.LlmProviders(provider)
        )
        if config is not None:
            return frozenset(config.get_supported_openai_params(model=name))
        if provider == "bedrock":
            config_class = litellm.BedrockImageGeneration.get_config_class(model=name)
            return frozenset(config_class.get_supported_openai_params(model=name))
        if provider == "vertex_ai":
            return frozenset({"n", "size"})
    except Exception:
        return None
    return None


def request_kwargs(settings: dict[str, Any], extra: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Build the keyword arguments for ``litellm.image_generation``.

    :param settings: ``model``, ``prompt``, the constructor settings and ``timeout``;
        ``None`` values are not sent.
    :param extra: The bot's ``image_generation_kwargs``, forwarded as given.
    :return: The kwargs, and the explicit settings dropped because the model refuses them.
    """
    kwargs = {key: value for key, value in settings.items() if value is not None}
    # num_retries is litellm's name, but its image generation ignores it: ImageBot retries.
    kwargs.update({key: value for key, value in extra.items() if key != "num_retries"})
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


def is_retired(model: str) -> bool:
    """Whether ``model`` names one of OpenAI's shut-down DALL-E models."""
    return openai_model(model) in RETIRED_OPENAI_MODELS


# OpenAI's per-model rules for /images/generations (its published API reference).
_OPENAI_RULES: dict[str, dict[str, Any]] = {
    "dall-e-3": {
        "n": (1, 1),
        "size": {"1024x1024", "1792x1024", "1024x1792"},
        "quality": {"standard", "hd"},
        "prompt": 4000,
    },
    "dall-e-2": {"n": (1, 10), "size": {"256x256", "512x512", "1024x1024"}, "quality": {"standard"}, "prompt": 1000},
    "gpt-image": {
        "n": (1, 10),
        "size": {"auto", "1024x1024", "1536x1024", "1024x1536"},
        "quality": {"low", "medium", "high", "auto"},
        "prompt": 32000,
    },
}


def _rules(model: str, base_model: str | None) -> tuple[str, dict[str, Any]] | None:
    name = openai_model(base_model or model)
    if name is None:
        return None
    if name.startswith("gpt-image"):
        return name, _OPENAI_RULES["gpt-image"]
    return name, _OPENAI_RULES[name]


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
        hint = " (call the bot again for more, or use gpt-image-1, which takes n up to 10)" if high == 1 else ""
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
        if output_format not in ("png", "jpeg", "webp"):
            msg = f"{name} takes output_format 'png', 'jpeg' or 'webp', not {output_format!r}."
            raise ValueError(msg)
        if extra.get("background") == "transparent" and output_format == "jpeg":
            msg = "A transparent background needs output_format 'png' or 'webp', not 'jpeg'."
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
    """Settings fit to store in a file or a history: no prompt, model, credential or URL token."""
    from llamabot._io import redact_url

    public = {}
    for key, value in sent.items():
        if value is None or key in ("prompt", "model", "api_key") or is_secret_name(key):
            continue
        if key == "api_base" and isinstance(value, str):
            value = redact_url(value)
        public[key] = value if isinstance(value, (str, int, float, bool, list, dict)) else repr(value)
    return public


def secrets_to_hide(api_key: str | None, extra: dict[str, Any]) -> list[str]:
    """Collect the credential values that must never appear in output."""
    values = [api_key] if isinstance(api_key, str) else []
    values += [v for k, v in extra.items() if isinstance(v, str) and is_secret_name(k)]
    values += [v for k, v in os.environ.items() if _SECRET_ENV.search(k)]
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in ``text`` with ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def enrich(exc: BaseException, model: str, api_key: str | None, extra: dict[str, Any]) -> None:
    """Add hints to a litellm exception and remove any secret from its text, in place.

    :param exc: The exception litellm raised; its type is kept.
    :param model: The model the call used.
    :param api_key: The bot's API key, to scrub.
    :param extra: The bot's extra kwargs, whose credentials are scrubbed too.
    """
    hidden = secrets_to_hide(api_key, extra)
    _scrub_exception(exc, hidden)
    text = str(exc)
    notes = getattr(exc, "__notes__", [])
    retired = is_retired(model) and ("model_not_found" in text or type(exc).__name__ == "NotFoundError")
    if retired and REPLACEMENT_HINT not in notes:
        add_note(exc, REPLACEMENT_HINT)
    status = getattr(exc, "status_code", None)
    if type(exc).__name__ == "AuthenticationError" or status == 401 or "api_key" in text.lower():
        routed = provider_of(model, extra.get("custom_llm_provider"))
        env = KEY_ENV_VARS.get(routed[1]) if routed else None
        hint = f"Set {env} in the environment, or pass api_key=... to ImageBot." if env else None
        if hint and hint not in notes:
            add_note(exc, hint)


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
