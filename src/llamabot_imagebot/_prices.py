"""What a request costs: litellm's list prices for an estimate, and what it says an answer cost.

Read from litellm's own price table (``litellm.model_cost``) and from the cost it puts on each
response; only a finite, positive figure is believed, so a provider reporting 0, a negative
or NaN cost cannot turn a spending cap off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from llamabot_imagebot import _models
from llamabot_imagebot._routing import load_litellm, provider_of, warn_changed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from llamabot_imagebot._settings import Settings


def finite_cost(value: Any) -> float | None:
    """A cost that can be trusted: a finite number above 0 (a provider's 0, negative or NaN is no figure)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def response_cost(response: Any, model: str) -> float | None:
    """What litellm says ``response`` cost in USD, or ``None`` where it does not know.

    litellm puts the price on every response it makes (``_hidden_params["response_cost"]``).
    Should a litellm response stop carrying it, ``litellm.completion_cost`` prices it instead,
    with a warning. A reported 0, negative, NaN or infinite cost counts as unknown.
    """
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping):
        return finite_cost(hidden.get("response_cost"))
    litellm = load_litellm()
    if not isinstance(response, litellm.ImageResponse):
        return None  # a stand-in answer (a patched litellm.image_generation): nothing priced it
    warn_changed("the response cost on ImageResponse._hidden_params", "litellm.completion_cost()")
    try:
        return finite_cost(litellm.completion_cost(completion_response=response, model=model))
    except Exception:
        return None


_QUALITIES = ("standard", "hd", "low", "medium", "high")


def price_per_image(settings: Settings, prompt_chars: int = 0) -> float | None:
    """litellm's list price for one image at the settings' size and quality, or ``None`` if it has none.

    Read from ``litellm.model_cost``, whose image entries are keyed ``[provider/][quality/]WxH/model``.
    With no quality given, the dearest is taken: an estimate that keeps a spending cap must not be
    low. A model priced per image token (``gpt-image-2`` and later) is estimated from OpenAI's
    documented output tokens for the size and quality, plus the prompt's text tokens.
    """
    litellm = load_litellm()
    routed = provider_of(settings.model, settings.custom_llm_provider)
    name, provider = routed if routed else (settings.model, "")
    width, _, height = str(settings.size).partition("x")
    pixels = int(width) * int(height) if width.isdigit() and height.isdigit() else 0
    dims = f"{width}-x-{height}"
    qualities = (settings.quality,) if settings.quality else _QUALITIES
    prices: list[float] = []
    for prefix in ("", f"{provider}/"):
        found = _prices(litellm.model_cost, [f"{prefix}{q}/{dims}/{name}" for q in qualities], pixels)
        found = found or _prices(litellm.model_cost, [f"{prefix}{dims}/{name}", f"{prefix}{name}"], pixels)
        if found:
            prices.append(max(found))
    if prices:
        return max(prices)
    entry = _models.entry_for(litellm.model_cost, settings.model, provider, name)
    return _models.token_price_per_image(entry, settings.size, settings.quality, prompt_chars)


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
