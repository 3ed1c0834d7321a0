"""A bot's settings as one immutable value: checked once, picklable, safe to record.

A call takes a snapshot of its bot (``Settings.of``) and everything after it reads the
snapshot: the request, the deadline, what files and the history record, and what a batch
sends to a worker process. Pure code: nothing here imports litellm.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path

from llamabot_imagebot import _openai
from llamabot_imagebot._exceptions import UnsupportedSettingWarning, warn
from llamabot_imagebot._redact import MASK, is_secret_name, redact, redact_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

#: The reference's defaults for ``timeout`` and for ``num_retries`` (litellm's name, ImageBot's retries).
DEFAULT_TIMEOUT = 600
DEFAULT_NUM_RETRIES = 2
#: The longest ``timeout`` accepted: a day (longer waits overflow the platform's thread timers).
MAX_TIMEOUT = 86_400.0
#: Largest image, in bytes, accepted from a provider (a download, or base64).
DEFAULT_MAX_IMAGE_BYTES = 100 * 1024 * 1024


class ReferenceDefault(str):
    """The reference's default model name, told apart from the same name passed on purpose.

    ``IMAGEBOT_MODEL`` replaces only this default, and only the default is never warned about
    (suites that build ``ImageBot()`` and run with ``-W error`` must keep passing).
    """

    __slots__ = ()
    reference_default = True


#: The API reference's default, ``dall-e-3`` (shut down by OpenAI; ``IMAGEBOT_MODEL`` picks another).
REFERENCE_DEFAULT_MODEL = ReferenceDefault("dall-e-3")


def default_model(model: str) -> str:
    """``model``, or ``IMAGEBOT_MODEL`` from the environment in place of the reference's default."""
    if isinstance(model, ReferenceDefault):
        return os.environ.get("IMAGEBOT_MODEL", "").strip() or model
    return model


#: What a per-call override sets on the bot itself; anything else is an extra litellm argument.
OWN = (
    "model",
    "size",
    "quality",
    "n",
    "response_format",
    "api_key",
    "api_base",
    "api_version",
    "timeout",
    "imagebot_metadata",
    "imagebot_history",
    "requests_per_minute",
)


class Settings:
    """Everything that shapes one call, frozen: the constructor's settings and the extra litellm kwargs.

    It has the attributes a bot has (``model``, ``size``, …, ``image_generation_kwargs``), so
    llamabot's steps take it wherever they take a bot.
    """

    __slots__ = (*OWN, "image_generation_kwargs", "max_image_bytes")

    model: str
    size: str
    quality: str | None
    n: int
    response_format: str
    api_key: str | None
    api_base: str | None
    api_version: str | None
    timeout: float
    imagebot_metadata: bool | None
    imagebot_history: bool | str | os.PathLike[str] | None
    requests_per_minute: float | None
    image_generation_kwargs: dict[str, Any]
    max_image_bytes: int

    def __init__(self, **values: Any) -> None:
        values.setdefault("max_image_bytes", DEFAULT_MAX_IMAGE_BYTES)
        for name in self.__slots__:
            object.__setattr__(self, name, values.get(name))
        object.__setattr__(self, "image_generation_kwargs", dict(values.get("image_generation_kwargs") or {}))
        check(self)

    @classmethod
    def of(cls, bot: Any) -> Settings:
        """A snapshot of ``bot`` (an ``ImageBot``, or a ``Settings``, returned as it is), checked."""
        if isinstance(bot, Settings):
            return bot
        return cls(**{name: getattr(bot, name, None) for name in cls.__slots__})

    def __setattr__(self, name: str, value: Any) -> None:
        msg = "Settings are immutable; use settings.replace(...) for a changed copy."
        raise AttributeError(msg)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.values(),))

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def replace(self, overrides: dict[str, Any]) -> Settings:
        """A copy with some settings changed for one call: a constructor argument or an extra litellm kwarg."""
        if not overrides:
            return self
        values = self.values()
        extra = dict(self.image_generation_kwargs)
        for key, value in overrides.items():
            if key in OWN:
                values[key] = value
            else:
                extra[key] = value
        values["image_generation_kwargs"] = extra
        return Settings(**values)

    @property
    def extra(self) -> dict[str, Any]:
        """The extra litellm kwargs (``image_generation_kwargs``)."""
        return self.image_generation_kwargs

    @property
    def custom_llm_provider(self) -> str | None:
        return self.extra.get("custom_llm_provider")

    @property
    def attempts(self) -> int:
        """Requests a call may make in all: ``num_retries + 1``."""
        retries = self.extra.get("num_retries")
        return (DEFAULT_NUM_RETRIES if retries is None else retries) + 1

    @property
    def metadata_on(self) -> bool:
        if self.imagebot_metadata is not None:
            return bool(self.imagebot_metadata)
        return env_flag("IMAGEBOT_METADATA")

    @property
    def history_option(self) -> bool | str | os.PathLike[str]:
        """``True`` (the default database), ``False`` (off) or a database path."""
        option = self.imagebot_history
        return env_flag("IMAGEBOT_HISTORY") if option is None else option

    def request(self, prompt: str) -> dict[str, Any]:
        """The constructor's settings as litellm kwargs for ``prompt`` (``None`` values included)."""
        return {
            "model": self.model,
            "prompt": prompt,
            "size": self.size,
            "n": self.n,
            "quality": self.quality,
            "response_format": self.response_format,
            "timeout": self.timeout,
            "api_key": self.api_key,
            "api_base": self.api_base,
            "api_version": self.api_version,
        }

    def public(self, sent: dict[str, Any] | None = None) -> dict[str, Any]:
        """The settings sent (or configured), without prompt, model or any credential."""
        if sent is None:
            sent = {**self.request(""), **self.extra}
        return public_settings(sent)

    def shown(self) -> dict[str, Any]:
        """What ``repr(bot)`` shows: every setting, credentials masked at any depth, the endpoint without secrets."""
        shown: dict[str, Any] = {
            "model": self.model,
            "size": self.size,
            "quality": self.quality,
            "n": self.n,
            "response_format": self.response_format,
            "api_key": None if self.api_key is None else MASK,
            "api_base": None if self.api_base is None else redact_url(self.api_base),
            "api_version": self.api_version,
            "timeout": self.timeout,
        }
        if self.requests_per_minute is not None:
            shown["requests_per_minute"] = self.requests_per_minute
        shown.update(redact(self.extra))
        documented = _openai.params(self.model, self.custom_llm_provider, self.extra.get("base_model"))
        if documented is not None and "response_format" not in documented:
            del shown["response_format"]  # never sent to this model (GPT image models always answer base64)
        return shown


def _restore(values: dict[str, Any]) -> Settings:
    return Settings(**values)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def history_path(option: bool | str | os.PathLike[str], default: Path) -> Path | None:
    """The database a call records into, or None when recording is off."""
    if option is False:
        return None
    return default if option is True else Path(option)


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(settings: Settings) -> None:
    """Reject settings no provider accepts, then what OpenAI's models are documented to refuse.

    :raises ValueError: For a value out of range, naming the setting and what it accepts.
    :raises TypeError: For a value of the wrong type.
    """
    model, size, n, timeout = settings.model, settings.size, settings.n, settings.timeout
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
    if settings.response_format is not None and settings.response_format not in _openai.RESPONSE_FORMATS:
        msg = f"response_format must be 'url' or 'b64_json', not {settings.response_format!r}."
        raise ValueError(msg)
    if not _is_number(timeout):
        msg = f"timeout must be a number of seconds, not {type(timeout).__name__}."
        raise TypeError(msg)
    if not 0 < timeout <= MAX_TIMEOUT:  # NaN fails here too
        msg = f"timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT:g} (a day), not {timeout}."
        raise ValueError(msg)
    if settings.quality is not None and not isinstance(settings.quality, str):
        msg = f"quality must be a string such as 'high' or 'hd', not {type(settings.quality).__name__}."
        raise TypeError(msg)
    rpm = settings.requests_per_minute
    if rpm is not None and (not _is_number(rpm) or not 0 < rpm < math.inf):
        msg = f"requests_per_minute must be a number above 0 (or None for no limit), not {rpm!r}."
        raise ValueError(msg)
    retries = settings.extra.get("num_retries")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
        msg = f"num_retries must be a whole number of at least 0, not {retries!r}."
        raise ValueError(msg)
    compression = settings.extra.get("output_compression")
    if compression is not None and not (isinstance(compression, int) and 0 <= compression <= 100):
        msg = f"output_compression must be a whole number from 0 to 100, not {compression!r}."
        raise ValueError(msg)
    _openai.check_settings(model, size, settings.quality, n, settings.extra)


def check_prompt(settings: Settings, prompt: Any) -> str:
    """Refuse what cannot be a prompt for this model, before anything loads or is sent.

    :return: The prompt.
    :raises TypeError: For a prompt that is not a string.
    :raises ValueError: For a blank prompt, or one longer than an OpenAI model accepts.
    """
    if not isinstance(prompt, str):
        msg = f"prompt must be a string, not {type(prompt).__name__}."
        raise TypeError(msg)
    if not prompt.strip():
        msg = "prompt is empty; describe the image to generate."
        raise ValueError(msg)
    _openai.check_prompt(settings.model, prompt, settings.extra)
    return prompt


#: Settings a request may carry besides the checked ones: OpenAI's GPT image parameters, litellm's own
#: keyword arguments, and ImageBot's; a close misspelling of one of these is warned about.
KNOWN_SETTINGS = frozenset(
    {
        "background",
        "output_format",
        "output_compression",
        "moderation",
        "input_fidelity",
        "partial_images",
        "image_config",
        "aspect_ratio",
        "negative_prompt",
        "seed",
        "custom_llm_provider",
        "drop_params",
        "extra_headers",
        "extra_body",
        "base_model",
        "metadata",
        "num_retries",
        "max_retries",
        "vertex_project",
        "vertex_location",
        "vertex_credentials",
        "aws_region_name",
        "aws_access_key_id",
        "aws_secret_access_key",
        "azure_ad_token",
        "organization",
        *_openai.CHECKED_PARAMS,
    }
)


def warn_misspelled(settings: Settings, accepted: Iterable[str] = ()) -> None:
    """Warn when an extra keyword looks like a misspelling of a setting (``qualty``); it is still sent."""
    unknown = [key for key in settings.extra if isinstance(key, str) and key not in KNOWN_SETTINGS and key not in OWN]
    if not unknown:  # the usual call: nothing more to look at
        return
    known = KNOWN_SETTINGS | frozenset(accepted) | frozenset(OWN)
    for key in unknown:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        if close:
            warn(
                f"{key!r} is not a setting ImageBot or {settings.model} knows; did you mean {close[0]!r}? "
                "It was sent to the provider as given.",
                UnsupportedSettingWarning,
            )
