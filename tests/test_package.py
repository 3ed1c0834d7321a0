"""The package's public surface and import cost."""

from __future__ import annotations

import subprocess
import sys
import types

import llamabot
import llamabot.bot.imagebot
from llamabot import ImageBot


def test_all_three_import_paths_give_the_same_class():
    """lmb.ImageBot, from llamabot import ImageBot and llamabot's own module path agree."""
    assert llamabot.ImageBot is ImageBot is llamabot.bot.imagebot.ImageBot


def test_all_lists_exactly_the_public_names():
    """__all__ is sorted and names every public attribute."""
    public = {
        name
        for name in dir(llamabot)
        if not name.startswith("_")
        and name not in {"annotations", "TYPE_CHECKING"}
        and not isinstance(getattr(llamabot, name), types.ModuleType)
    }
    assert llamabot.__all__ == sorted(llamabot.__all__)
    assert public | {"__version__"} == set(llamabot.__all__)
    assert all(getattr(llamabot, name) is not None for name in llamabot.__all__)


def test_version_comes_from_the_installed_metadata():
    """__version__ is the distribution's version."""
    from importlib.metadata import version

    assert llamabot.__version__ == version("llamabot-imagebot")


def test_import_loads_neither_litellm_nor_requests():
    """`import llamabot` stays cheap: litellm (about 2 s) and requests load on first use."""
    code = "import sys, llamabot as lmb; lmb.ImageBot; lmb.ImageBot(model='gpt-image-1'); print(sorted(m for m in ('litellm', 'requests', 'openai', 'httpx', 'PIL', 'IPython') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_typed_marker_ships():
    """py.typed is part of the package."""
    from importlib.resources import files

    assert files("llamabot").joinpath("py.typed").is_file()
