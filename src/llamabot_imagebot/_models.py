"""What litellm's model table says about image models: lifecycles, pricing, edits, a catalogue.

Pure functions over a model table (``litellm.model_cost``, or any mapping of the same
shape), so that the facts come from litellm's data and never from this project's code.
The only lifecycle facts written here are for the two names litellm no longer lists
(``dall-e-2``, ``dall-e-3``), and they are used only in the note on a 404.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Shut-down models litellm's table no longer lists (litellm >= 1.110 dropped them), with the
#: date OpenAI shut them down. Used only to explain a 404; everything else comes from the table.
UNLISTED_SHUTDOWNS = {"dall-e-2": "2026-05-12", "dall-e-3": "2026-05-12"}

#: How many days ahead a shut-down date is close enough to warn of.
WARN_DAYS_AHEAD = 30

IMAGE_MODES = ("image_generation", "image_edit")
EDITS_ENDPOINT = "/v1/images/edits"

# Price-table keys for one model at one quality and size: [provider/][quality/]W-x-H/model.
_PRICE_VARIANT = re.compile(r"^(?:(?P<provider>[^/]+)/)??(?:(?:standard|hd|low|medium|high)/)?\d+-x-\d+/(?P<model>.+)$")


class Lifecycle:
    """One model's lifecycle as litellm's table gives it.

    ``status`` is "current", "retiring" (a shut-down date ahead) or "retired" (the date has passed).
    """

    __slots__ = ("date", "model", "status", "successor")

    def __init__(self, model: str, status: str, date: datetime.date | None, successor: str | None) -> None:
        self.model, self.status, self.date, self.successor = model, status, date, successor


def entry_for(table: Mapping[str, Any], model: str, provider: str | None = None, name: str | None = None) -> Any:
    """The table entry for ``model``: as written, then as ``provider/name`` and ``name``, else None."""
    candidates = [model]
    if name:
        candidates += [f"{provider}/{name}", name] if provider else [name]
    for key in candidates:
        entry = table.get(key)
        if isinstance(entry, Mapping):
            return entry
    return None


def _date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def lifecycle(model: str, entry: Any, today: datetime.date) -> Lifecycle:
    """The lifecycle of ``model`` from its table ``entry`` (a mapping, or None for "not listed")."""
    if not isinstance(entry, Mapping):
        return Lifecycle(model, "current", None, None)
    date = _date(entry.get("deprecation_date"))
    successor = entry.get("successor_model")
    successor = successor if isinstance(successor, str) and successor.strip() else None
    if date is None:
        return Lifecycle(model, "current", None, successor)
    return Lifecycle(model, "retired" if date <= today else "retiring", date, successor)


def live_successor(table: Mapping[str, Any], successor: str | None, today: datetime.date) -> str | None:
    """The first model in a chain of successors that is not shut down (a successor may retire too)."""
    seen: set[str] = set()
    while successor and successor not in seen:
        seen.add(successor)
        found = lifecycle(successor, table.get(successor), today)
        if found.status != "retired" or not found.successor:
            return successor
        successor = found.successor
    return successor


def warning_text(found: Lifecycle, table: Mapping[str, Any], today: datetime.date) -> str | None:
    """What to tell a user before a request to ``found.model``, or None when it is current (or far off)."""
    if found.date is None or found.status == "current":
        return None
    successor = live_successor(table, found.successor, today)
    use = f" Use its successor: ImageBot(model={successor!r})." if successor else ""
    if found.status == "retired":
        return (
            f"{found.model} was shut down on {found.date.isoformat()} (litellm's model table); "
            f"requests to it fail.{use}"
        )
    days = (found.date - today).days
    if days >= WARN_DAYS_AHEAD:
        return None
    when = "tomorrow" if days == 1 else f"in {days} days"
    return f"{found.model} shuts down on {found.date.isoformat()} ({when}, says litellm's model table).{use}"


def not_found_note(
    model: str, name: str | None, entry: Any, table: Mapping[str, Any], today: datetime.date
) -> str | None:
    """The note for a 404 on ``model``: when it was shut down and what to use instead, else None."""
    found = lifecycle(model, entry, today)
    if found.status == "retired" and found.date is not None:
        successor = live_successor(table, found.successor, today)
        use = f" Use ImageBot(model={successor!r}) (its successor in litellm's model table)." if successor else ""
        return f"{model} was shut down on {found.date.isoformat()}.{use}"
    shut = UNLISTED_SHUTDOWNS.get(name or model)
    if shut is None:
        return None
    current = current_models(table, "openai", today)
    use = f" Current OpenAI image models in litellm's table: {', '.join(current)}." if current else ""
    return f"OpenAI shut {name or model} down on {shut}.{use}"


def current_models(table: Mapping[str, Any], provider: str, today: datetime.date, limit: int = 5) -> list[str]:
    """A few of ``provider``'s image models that litellm's table lists with no shut-down date passed."""
    names = [row.model for row in catalog(table, today) if row.provider == provider and row.status != "retired"]
    return [name for name in names if not re.search(r"-\d{4}-\d{2}-\d{2}$", name)][:limit]


def pricing(entries: Iterable[Mapping[str, Any]]) -> str:
    """How litellm prices a model: "per image", "per pixel", "per image token", "per token" or "unpriced"."""
    kinds = set()
    for entry in entries:
        if any(_positive(entry.get(k)) for k in ("output_cost_per_image", "input_cost_per_image")):
            kinds.add("per image")
        if any(_positive(entry.get(k)) for k in ("output_cost_per_pixel", "input_cost_per_pixel")):
            kinds.add("per pixel")
        if _positive(entry.get("output_cost_per_image_token")):
            kinds.add("per image token")
        if any(_positive(entry.get(k)) for k in ("output_cost_per_token", "input_cost_per_token")):
            kinds.add("per token")
    for kind in ("per image", "per pixel", "per image token", "per token"):
        if kind in kinds:
            return kind
    return "unpriced"


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


class CatalogRow:
    """One image model in litellm's table, as ``imagebot models`` shows it."""

    __slots__ = ("date", "edits", "model", "pricing", "provider", "status", "successor")

    def __init__(
        self,
        model: str,
        provider: str,
        status: str,
        date: datetime.date | None,
        successor: str | None,
        pricing: str,
        edits: bool,
    ) -> None:
        self.model, self.provider, self.status, self.date = model, provider, status, date
        self.successor, self.pricing, self.edits = successor, pricing, edits

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "status": self.status,
            "deprecation_date": self.date.isoformat() if self.date else None,
            "successor_model": self.successor,
            "pricing": self.pricing,
            "edits": self.edits,
        }

    def status_text(self) -> str:
        if self.date is None:
            return "current"
        if self.status == "retired":
            return f"shut down on {self.date.isoformat()}" + (f" → {self.successor}" if self.successor else "")
        return f"shuts down on {self.date.isoformat()}"


def catalog(table: Mapping[str, Any], today: datetime.date) -> list[CatalogRow]:
    """Every image model in ``table``, one row each, sorted by provider then name.

    Price entries for one quality and size (``azure/high/1024-x-1024/gpt-image-1``) are folded
    into their model's row: they say how it is priced, not that it is another model.
    """
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for key, entry in table.items():
        if not isinstance(entry, Mapping) or entry.get("mode") not in IMAGE_MODES:
            continue
        provider = str(entry.get("litellm_provider") or "?")
        variant = _PRICE_VARIANT.match(key)
        name = key
        if variant is not None:
            name = f"{variant['provider']}/{variant['model']}" if variant["provider"] else variant["model"]
        grouped.setdefault((provider, name), []).append(entry)
    rows = []
    for (provider, name), entries in grouped.items():
        main = table.get(name) if isinstance(table.get(name), Mapping) else entries[0]
        found = lifecycle(name, main, today)
        edits = any(
            entry.get("mode") == "image_edit" or EDITS_ENDPOINT in (entry.get("supported_endpoints") or ())
            for entry in entries
        )
        # The model's own entry says how litellm prices an answer; its size entries, when it has none.
        priced = pricing([main]) if main in entries else "unpriced"
        priced = priced if priced != "unpriced" else pricing(entries)
        rows.append(CatalogRow(name, provider, found.status, found.date, found.successor, priced, edits))
    return sorted(rows, key=lambda row: (row.provider, row.model))


# OpenAI's documented output-token counts for one GPT image model image, by quality and size
# (the "cost and latency" table of its image generation guide, for 1024x1024, 1024x1536 and
# 1536x1024). Other sizes are scaled by their pixel count.
_OUTPUT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}


def output_image_tokens(size: str | None, quality: str | None) -> int:
    """OpenAI's documented output image tokens for one image at ``size`` and ``quality``.

    No quality, ``auto`` or an unknown one counts as ``high``, and ``auto`` (or no size) as
    the largest documented size: an estimate that keeps a spending cap must not be low.
    """
    by_size = _OUTPUT_TOKENS.get(str(quality).lower(), _OUTPUT_TOKENS["high"])
    size = str(size or "auto").lower()
    if size in by_size:
        return by_size[size]
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        return max(by_size.values())
    return max(1, round(by_size["1024x1024"] * int(width) * int(height) / (1024 * 1024)))


def token_price_per_image(entry: Any, size: str | None, quality: str | None, prompt_chars: int = 0) -> float | None:
    """The estimated USD for one image of a model litellm prices per image token, or None.

    Output: OpenAI's documented image tokens times ``output_cost_per_image_token``. Input: the
    prompt's text tokens (about 4 characters each, rounded up) times ``input_cost_per_token``.
    """
    if not isinstance(entry, Mapping) or not _positive(entry.get("output_cost_per_image_token")):
        return None
    output = output_image_tokens(size, quality) * float(entry["output_cost_per_image_token"])
    text_rate = entry.get("input_cost_per_token")
    text = -(-prompt_chars // 4) * float(text_rate) if text_rate is not None and _positive(text_rate) else 0.0
    return output + text
