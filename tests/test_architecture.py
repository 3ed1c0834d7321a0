"""The shape of the house, read from the source (AST), never by importing it.

No import cycles, counting function-local and ``TYPE_CHECKING`` imports; no module over 500
lines (the class's over 450); a function-local import only for a heavy module, so that
``import llamabot`` stays light while the dependencies between modules stay visible at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import llamabot_imagebot

SRC = Path(llamabot_imagebot.__file__).parent.parent
PACKAGES = ("llamabot_imagebot", "llamabot")
#: Modules that may be imported inside a function: heavy to load, and needed only on some paths.
HEAVY = {
    "litellm": "about 2 s to import",
    "openai": "litellm's SDK",
    "httpx": "litellm's HTTP client",
    "requests": "downloads only",
    "urllib3": "downloads only",
    "PIL": "optional: conversions and thumbnails",
    "IPython": "only inside a notebook",
    "tqdm": "batches only",
    "sqlite3": "the history only",
    "asyncio": "async calls and batches only (60 ms to import)",
    "concurrent": "batches only (it loads logging)",
    "inspect": "once, to read litellm's register_model signature",
    "email": "an HTTP-date Retry-After only",
    "importlib": "the version and lazy names only",
    "platformdirs": "the history's default folder only",
    "c2pa": "optional: signed Content Credentials",
    "llamabot_imagebot._refusal": "it subclasses litellm's exception, so it imports litellm",
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (SRC / package).rglob("*.py"):
            name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


MODULES = modules()


def imports(path: Path) -> list[tuple[str, ast.AST, bool]]:
    """Every import in a file: the module it names, the node, and whether it is at the top of the file."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    # Imports under `if TYPE_CHECKING:` at the top count as the file's own (for type checkers they are).
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            top |= {id(child) for child in ast.walk(node)}
        if isinstance(node, ast.Try):
            top |= {id(child) for child in node.body + [h for handler in node.handlers for h in handler.body]}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.append((candidate if candidate in MODULES else node.module, node, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node, id(node) in top) for alias in node.names]
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps = {module for module, _, _ in imports(path) if module in MODULES}
        if path.name == "__init__.py" and name == "llamabot_imagebot":
            deps |= set(llamabot_imagebot.LAZY.values())  # names loaded on first access are imports too
        edges[name] = deps - {name}
    return edges


def test_no_import_cycles_counting_local_and_type_checking_imports():
    """No module imports, directly or through others, a module that imports it back."""
    edges = graph()

    def cycle(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for dep in sorted(edges[node]):
                if dep == start:
                    return [*path, dep]
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, [*path, dep]))
        return None

    cycles = [" -> ".join(found) for name in sorted(edges) if (found := cycle(name))]
    assert cycles == []


def test_the_cycle_check_sees_a_cycle(tmp_path, monkeypatch):
    """The check is not vacuous: a function-local import back up is an edge it follows."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    import a\n")
    monkeypatch.setitem(MODULES, "a", tmp_path / "a.py")
    monkeypatch.setitem(MODULES, "b", tmp_path / "b.py")
    edges = graph()
    assert "a" in edges["b"] and "b" in edges["a"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    """No module over 500 lines; the class's module at most 450."""
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= (450 if name == "llamabot_imagebot.imagebot" else 500), f"{name} has {lines} lines"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_local_imports_are_only_of_heavy_modules(name):
    """An import inside a function is of a heavy module only: the project's own modules are imported at the top."""
    local = [
        f"{MODULES[name].name}:{node.lineno} {module}"
        for module, node, at_top in imports(MODULES[name])
        if not at_top and not any(module == heavy or module.startswith(heavy + ".") for heavy in HEAVY)
    ]
    assert local == []


def test_import_llamabot_loads_no_heavy_module():
    """`import llamabot` loads neither litellm nor anything else on the heavy list (checked in a fresh process)."""
    import subprocess
    import sys

    names = sorted(heavy for heavy in HEAVY if "." not in heavy and heavy != "importlib")
    code = f"import sys, llamabot; print(sorted(m for m in sys.modules if m.split('.')[0] in {set(names)!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
