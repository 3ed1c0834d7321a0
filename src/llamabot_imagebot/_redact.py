"""Keeping secrets out of everything ImageBot shows or stores: repr, files, history, errors.

Pure functions on values. A secret is found by its name at any depth (``api_key``,
``extra_headers["X-Api-Key"]``, ``Authorization``), by its shape (``sk-…``, ``Bearer …``,
AWS key ids), or in a URL (``user:password@``, ``?token=``, ``?sig=``, ``X-Amz-Signature``).
"""

from __future__ import annotations

import base64
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MASK = "***"
_SECRET_NAME = re.compile(r"key|secret|token|password|passwd|credential|auth|signature|cookie", re.IGNORECASE)
_SECRET_ENV = re.compile(r"(_API_KEY|_KEY|_SECRET|_SECRET_ACCESS_KEY|_TOKEN|_PASSWORD)$")
# Values shaped like credentials, whatever they are called: provider key prefixes, bearer
# tokens, AWS access key ids, JWTs.
_SECRET_SHAPE = re.compile(
    r"^(?:(?:sk|pk|rk|or|xai|gsk|hf|ghp|gho|glpat|AIza)[-_][A-Za-z0-9_\-]{8,}"
    r"|AIza[0-9A-Za-z_\-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|Bearer\s+\S{8,}|Basic\s+\S{8,}"
    r"|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*)$"
)
#: Shorter values are not treated as secrets when scrubbing text (they would mask ordinary words).
MIN_SECRET_LENGTH = 6


def is_secret_name(name: str) -> bool:
    """Whether a setting's or header's name suggests it holds a credential."""
    return bool(_SECRET_NAME.search(name))


def looks_like_secret(value: str) -> bool:
    """Whether a string is shaped like a credential (an API key, a bearer token, a JWT)."""
    return bool(_SECRET_SHAPE.match(value.strip()))


def redact_url(url: str) -> str:
    """A URL without its credentials: no ``user:password@``, no query string (signed URLs carry tokens)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def redact(value: Any, name: str = "") -> Any:
    """A copy of ``value`` with every secret replaced by ``***``, at any depth.

    :param value: A setting: a string, number, mapping or sequence, nested as deep as it is.
    :param name: The setting's (or header's) name, if it has one.
    :return: The same structure, safe to show or store.
    """
    if value is None:
        return None
    if name and is_secret_name(name):
        return MASK
    if isinstance(value, Mapping):
        return {key: redact(item, str(key)) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(item) for item in value]
    if isinstance(value, str):
        if looks_like_secret(value):
            return MASK
        if "://" in value:
            return redact_url(value)
        return value
    if isinstance(value, (int, float, bool)):
        return value
    return redact(repr(value))


def secret_values(value: Any, name: str = "") -> set[str]:
    """Every secret string inside ``value`` (by name or by shape, at any depth)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            found |= secret_values(item, str(key))
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            found |= secret_values(item, name)
    elif isinstance(value, str):
        if (name and is_secret_name(name)) or looks_like_secret(value):
            found.add(value)
        parts = urllib.parse.urlsplit(value) if "://" in value else None
        if parts is not None:
            if parts.password:
                found.add(parts.password)
                # The userinfo travels as a Basic-auth header too, and a provider may echo it back.
                userinfo = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password)}"
                found.add(base64.b64encode(userinfo.encode("utf-8")).decode("ascii"))
            found |= {v for _, v in urllib.parse.parse_qsl(parts.query)}
    return found


def secrets_to_hide(*values: Any) -> list[str]:
    """The secret strings in ``values`` and in the environment's credential variables, longest first."""
    found = set().union(*(secret_values(value) for value in values)) if values else set()
    found |= {v for k, v in os.environ.items() if _SECRET_ENV.search(k)}
    for bearer in list(found):  # "Bearer sk-…": the token alone must go too
        token = bearer.partition(" ")[2]
        if bearer.startswith(("Bearer ", "Basic ")) and token:
            found.add(token)
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in ``text`` with ``***``."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
