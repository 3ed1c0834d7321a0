"""The command in a real terminal (a pseudo-terminal) and in a pipe that closes early."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
from werkzeug import Response

from llamabot_imagebot import _history
from tests.fakes import b64, tagged

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def slow_images(provider, seconds: float = 0.6) -> None:
    def answer(request):
        time.sleep(seconds)
        prompt = json.loads(request.get_data())["prompt"]
        body = {"created": 1, "data": [{"b64_json": b64(tagged(prompt.encode()))}]}
        return Response(json.dumps(body), 200, content_type="application/json")

    provider.route("/images/generations", answer)


def run_in_terminal(args: list[str], env: dict[str, str], cwd: str, timeout: float = 120) -> str:
    """Run the command with stdout and stderr on a pseudo-terminal; return everything it drew."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    process = subprocess.Popen(args, stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    os.close(terminal)
    drawn = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(controller)
    return drawn.decode("utf-8", "replace")


@pytest.mark.wire
def test_results_never_share_a_line_with_the_progress_bar(provider, tmp_path):
    """On a terminal the bar is drawn on stderr; each saved path is on a line of its own, the bar cleared first."""
    slow_images(provider)
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "100"}
    args = [sys.executable, "-m", "llamabot", "a red fox", "a grey cat", "--concurrency", "1", "--no-history"]
    drawn = run_in_terminal([*args, "--api-base", provider.base], env, str(tmp_path))
    lines = [ANSI.sub("", line).rstrip("\r").split("\r")[-1].strip() for line in drawn.split("\n")]
    assert "a_red_fox.png" in lines and "a_grey_cat.png" in lines, drawn
    # a line holding a path holds nothing else (no bar glued to it)
    for line in drawn.split("\n"):
        if ".png" in line:
            assert ANSI.sub("", line).rstrip("\r").split("\r")[-1].strip() in ("a_red_fox.png", "a_grey_cat.png"), repr(
                line
            )
    assert "prompt" in drawn  # the bar was drawn (tqdm's unit)


@pytest.mark.wire
def test_quiet_prints_only_the_results_on_a_terminal(provider, tmp_path):
    """-q: no bar and no notes, just the paths."""
    slow_images(provider, 0.1)
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    args = [sys.executable, "-m", "llamabot", "a red fox", "-q", "--no-history", "--api-base", provider.base]
    drawn = run_in_terminal(args, env, str(tmp_path))
    assert [line.strip() for line in drawn.splitlines() if line.strip()] == ["a_red_fox.png"]


@pytest.mark.wire
def test_a_reader_that_goes_away_ends_the_command_quietly(provider, tmp_path):
    """`imagebot ... | head -1`: exit 141, no traceback, and the history records no shutdown error."""
    slow_images(provider, 0.3)
    history = tmp_path / "h.sqlite3"
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-test",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "IMAGEBOT_HISTORY_DB": str(history),
    }
    prompts = [f"picture {i}" for i in range(6)]
    command = f"{sys.executable} -m llamabot {' '.join(repr(p) for p in prompts)} --concurrency 1 --api-base {provider.base} | head -1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.stdout.strip() == "picture_0.png"
    assert done.returncode == 141 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    errors = [row["error"] for row in _history.recent(path=history) if row["error"]]
    assert not any("cannot schedule new futures" in error for error in errors)
