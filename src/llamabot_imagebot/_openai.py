"""OpenAI's documented limits for its image models, as pure functions on names and values.

From OpenAI's published API reference for ``/images/generations`` and ``/images/edits``
(see ``shared/PROVIDERS.md``). Pure string logic: nothing here imports litellm, so that
building a bot and checking its settings cost nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: OpenAI's image models that litellm >= 1.110 no longer lists (shut down 2026-05-12).
UNLISTED_MODELS = frozenset({"dall-e-2", "dall-e-3"})
#: The OpenAI parameters litellm checks against a model's supported list
#: (``default_params`` in ``litellm.utils.get_optional_params_image_gen``).
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
#: The reference's defaults: sent only where a model accepts them.
DOCUMENTED_DEFAULTS: dict[str, object] = {"size": "1024x1024", "n": 1, "response_format": "url"}
RESPONSE_FORMATS = ("url", "b64_json")
#: What GPT image models answer in (png is the default).
OUTPUT_FORMATS = ("png", "jpeg", "webp", "gif", "svg")

# Per-model rules; "params" are the checked OpenAI parameters each model takes.
_RULES: dict[str, dict[str, Any]] = {
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

#: ``/images/edits`` for GPT image models: up to 16 input images, each under 50 MB.
EDIT_MAX_IMAGES = 16
EDIT_MAX_IMAGE_BYTES = 50 * 1024 * 1024


def model_name(model: str) -> str | None:
    """The OpenAI image model ``model`` names (bare or ``openai/``), else ``None``."""
    name = model[len("openai/") :] if model.startswith("openai/") else model
    if "/" in name or not (name in UNLISTED_MODELS or name.startswith("gpt-image")):
        return None
    return name


def rules(model: str, base_model: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """``(name, rules)`` for an OpenAI image model, else ``None``."""
    name = model_name(base_model or model)
    if name is None:
        return None
    return name, _RULES["gpt-image" if name.startswith("gpt-image") else name]


def params(model: str, custom_llm_provider: str | None = None, base_model: str | None = None) -> frozenset[str] | None:
    """The checked parameters OpenAI documents for ``model``, if it is one of OpenAI's image models.

    Covers bare and ``openai/`` names, and Azure deployments of DALL-E (a deployment named
    like ``dalle3``, or ``base_model="dall-e-3"``), as litellm 1.106 routed them.
    """
    if model.startswith("azure/") or custom_llm_provider == "azure":
        name = model_name(base_model) if base_model else None
        if name is None and "dalle3" in model.lower().replace("-", ""):
            name = "dall-e-3"
        if name not in UNLISTED_MODELS:
            return None  # other Azure deployments: litellm's own rules
    elif custom_llm_provider not in (None, "openai"):
        return None
    else:
        name = model_name(base_model or model)
    found = rules(name or "")
    return found[1]["params"] if found else None


def check_settings(model: str, size: str | None, quality: str | None, n: int, extra: dict[str, Any]) -> None:
    """Refuse settings that OpenAI's image models are documented not to accept.

    :raises ValueError: Naming the setting, the model and what it accepts.
    """
    found = rules(model, extra.get("base_model"))
    if found is None:
        return
    name, limits = found
    low, high = limits["n"]
    if not low <= n <= high:
        hint = (
            " (call the bot again for more, or use a GPT image model such as gpt-image-2, which takes n up to 10)"
            if high == 1
            else ""
        )
        msg = f"{name} makes {low} to {high} images per request, not n={n}{hint}."
        raise ValueError(msg.replace("1 to 1 images", "one image"))
    # gpt-image-2 and later take any WIDTHxHEIGHT.
    if size is not None and size not in limits["size"] and not name.startswith("gpt-image-2"):
        msg = f"{name} does not make size {size!r}; use one of {', '.join(sorted(limits['size']))}."
        raise ValueError(msg)
    if quality is not None and quality not in limits["quality"] and quality != "auto":
        msg = f"{name} does not take quality {quality!r}; use one of {', '.join(sorted(limits['quality']))}."
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


def check_prompt(model: str, prompt: str, extra: dict[str, Any]) -> None:
    """Refuse a prompt longer than an OpenAI image model accepts."""
    found = rules(model, extra.get("base_model"))
    if found is not None and len(prompt) > found[1]["prompt"]:
        name, limits = found
        msg = f"The prompt has {len(prompt):,} characters; {name} accepts at most {limits['prompt']:,}."
        raise ValueError(msg)
