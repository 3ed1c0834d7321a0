"""Living beside the real llamabot: real wheels installed in both orders, then each uninstalled.

This package's wheel is built from the checkout; the "real llamabot" is a wheel made here with
the files the real one shares with it (``llamabot/__init__.py``, ``llamabot/bot/imagebot.py``),
so the clash is the one pip really produces. Each scenario runs in a fresh virtual environment
that sees the test environment's dependencies (litellm and the rest) but neither package.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.fakes import PNG, b64

ROOT = Path(__file__).resolve().parent.parent
REAL_VERSION = "0.19.16"


def _record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def real_llamabot_wheel(folder: Path) -> Path:
    """A wheel named like the real llamabot, shipping the files the two distributions share."""
    files = {
        "llamabot/__init__.py": b'"""The real llamabot (a stand-in)."""\nREAL = True\n__version__ = "0.19.16"\n',
        "llamabot/bot/__init__.py": b"",
        "llamabot/bot/imagebot.py": b"class ImageBot:\n    REAL = True\n",
        "llamabot/components/__init__.py": b"",
    }
    info = f"llamabot-{REAL_VERSION}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: llamabot\nVersion: {REAL_VERSION}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        writer.writerow(_record_line(name, data))
    writer.writerow([f"{info}/RECORD", "", ""])
    files[f"{info}/RECORD"] = record.getvalue().encode()
    wheel = folder / f"llamabot-{REAL_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (ours,) = folder.glob("llamabot_imagebot-*.whl")
    return {"ours": ours, "real": real_llamabot_wheel(folder)}


class Env:
    """A fresh virtual environment that sees the test environment's dependencies, not its packages."""

    def __init__(self, folder: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
        self.bin = folder / "bin"
        python = self.bin / "python"
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # A plain path line: the test environment's .pth files (its editable install) are not run.
        Path(site, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    def pip(self, *args: str) -> None:
        subprocess.run([str(self.bin / "python"), "-m", "pip", "-q", *args], check=True, capture_output=True)

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
        return subprocess.run(list(args), capture_output=True, text=True, env=environment, timeout=300)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "python"), "-W", "always", "-c", code)

    def imagebot(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "imagebot"), *args, env=env)


def make_an_image(env: Env, provider, folder: Path) -> None:
    """The command still makes an image: exit 0, the file saved."""
    provider.json_route("/images/generations", {"created": 1, "data": [{"b64_json": b64(PNG)}]})
    out = folder / "fox.png"
    made = env.imagebot(
        "A fox", "-o", str(out), "--api-base", provider.base, "--no-history", env={"OPENAI_API_KEY": "sk-test"}
    )
    assert made.returncode == 0, made.stderr
    assert out.read_bytes()[:8] == PNG[:8]


@pytest.mark.wire
def test_the_real_llamabot_installed_after_this_package(wheels, tmp_path, provider):
    """`import llamabot` is the real one; `imagebot` works and --version says how to switch back; uninstalling
    the real llamabot leaves `imagebot` working and names the repair, which works."""
    env = Env(tmp_path / "venv")
    env.pip("install", "--no-deps", "--no-index", str(wheels["ours"]))
    env.pip("install", "--no-deps", "--no-index", str(wheels["real"]))
    assert env.python("import llamabot; print(llamabot.REAL)").stdout.strip() == "True"
    version = env.imagebot("--version")
    assert version.returncode == 0 and "gives the real llamabot" in version.stdout
    assert "pip install --force-reinstall --no-deps llamabot-imagebot" in version.stdout
    make_an_image(env, provider, tmp_path)
    env.pip("uninstall", "-y", "llamabot")
    broken = env.imagebot("--version")
    assert broken.returncode == 0 and "`import llamabot` fails here" in broken.stdout
    assert (
        env.python("import llamabot_imagebot; print(llamabot_imagebot.ImageBot.__name__)").stdout.strip() == "ImageBot"
    )
    env.pip("install", "--force-reinstall", "--no-deps", "--no-index", str(wheels["ours"]))
    repaired = env.python("import llamabot, llamabot_imagebot; print(llamabot.ImageBot is llamabot_imagebot.ImageBot)")
    assert repaired.stdout.strip() == "True", repaired.stderr


@pytest.mark.wire
def test_this_package_installed_after_the_real_llamabot(wheels, tmp_path, provider):
    """`import llamabot` is ImageBot and warns once, naming how to restore the real one; `imagebot` works; after
    uninstalling this package, the documented repair brings the real llamabot back."""
    env = Env(tmp_path / "venv")
    env.pip("install", "--no-deps", "--no-index", str(wheels["real"]))
    env.pip("install", "--no-deps", "--no-index", str(wheels["ours"]))
    imported = env.python("import llamabot; print(llamabot.ImageBot.__module__)")
    assert imported.stdout.strip() == "llamabot_imagebot.imagebot"
    assert imported.stderr.count("LlamabotConflictWarning") == 1
    assert "pip install --force-reinstall --no-deps llamabot" in imported.stderr
    version = env.imagebot("--version")
    assert version.returncode == 0 and "note" not in version.stdout
    make_an_image(env, provider, tmp_path)
    env.pip("uninstall", "-y", "llamabot-imagebot")
    env.pip("install", "--force-reinstall", "--no-deps", "--no-index", str(wheels["real"]))
    assert env.python("import llamabot; print(llamabot.REAL)").stdout.strip() == "True"
