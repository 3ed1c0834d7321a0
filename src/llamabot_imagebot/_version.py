"""The installed package's version, read when asked (importlib.metadata costs import time)."""

from __future__ import annotations


def version() -> str:
    """The version of the installed ``llamabot-imagebot``, or ``0+unknown`` in an uninstalled source tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("llamabot-imagebot")
    except PackageNotFoundError:
        return "0+unknown"
