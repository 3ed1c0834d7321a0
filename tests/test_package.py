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
    code = "import sys, llamabot as lmb; lmb.ImageBot; lmb.ImageBot(model='gpt-image-2'); print(sorted(m for m in ('litellm', 'requests', 'openai', 'httpx', 'PIL', 'IPython') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_typed_marker_ships():
    """py.typed is part of the package."""
    from importlib.resources import files

    assert files("llamabot").joinpath("py.typed").is_file()
    assert files("llamabot_imagebot").joinpath("py.typed").is_file()


def test_nothing_in_src_assigns_to_other_libraries():
    """No attribute of litellm, httpx, openai or requests is assigned (or setattr'd) anywhere in src/.

    The one documented exception is litellm's own switch for its console banner, ``suppress_debug_info``.
    """
    import ast
    from pathlib import Path

    foreign = {"litellm", "httpx", "openai", "requests"}

    def root(node):
        while isinstance(node, ast.Attribute):
            node = node.value
        if isinstance(node, ast.Call):  # load_litellm().x = ...
            return "litellm" if ast.unparse(node.func).endswith("load_litellm") else None
        return node.id if isinstance(node, ast.Name) else None

    offenders = []
    import llamabot_imagebot

    for path in Path(llamabot_imagebot.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                targets = [ast.Attribute(value=node.args[0], attr="?")]
            offenders += [
                f"{path.name}:{node.lineno}"
                for target in targets
                if isinstance(target, ast.Attribute)
                and root(target) in foreign
                and target.attr != "suppress_debug_info"
            ]
    assert offenders == []


def test_warns_once_when_the_real_llamabot_is_installed_too(tmp_path):
    """Another distribution providing `llamabot` (the real llamabot) is named in one warning at import."""
    import os

    site = tmp_path / "site"
    (site / "llamabot-0.19.16.dist-info").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import llamabot, llamabot.bot.imagebot"
    run = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, env=env, cwd=elsewhere
    )
    assert run.returncode == 0
    assert run.stderr.count("LlamabotConflictWarning") == 1
    assert "llamabot 0.19.16" in run.stderr and "llamabot-imagebot" in run.stderr
    clean = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import llamabot"], capture_output=True, text=True, cwd=elsewhere
    )
    assert clean.returncode == 0 and clean.stderr == ""
