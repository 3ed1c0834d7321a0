"""Secrets never leave the process: not in repr, files, history, errors or the command's output.

Secrets are planted at every depth a user may put them (headers, nested settings, the endpoint's
user:password and query, signed result URLs) and looked for, byte for byte, where they could land.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

import llamabot as lmb
from tests.fakes import PNG

CANARY = "gw-canary-7f3a9c2e5b8d4f61"


def stored_bytes(database: Path) -> bytes:
    """Everything the history database holds on disk, journal included."""
    return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))


def test_repr_masks_secrets_at_any_depth():
    """Nested headers, bearer tokens, key-shaped values and the endpoint's credentials are masked."""
    bot = lmb.ImageBot(
        model="gpt-image-2",
        api_key="sk-proj-abcdefgh12345678",
        api_base="https://user:hunter22pw@gateway.example/v1?token=tok123456789",
        extra_headers={"X-Api-Key": CANARY, "X-Trace": "trace-me"},
        metadata={"calls": [{"authorization": "Bearer abcdefghijkl"}, {"note": "sk-live-0123456789abcdef"}]},
    )
    shown = repr(bot)
    for secret in (CANARY, "hunter22pw", "tok123456789", "abcdefghijkl", "sk-live-0123456789abcdef", "sk-proj"):
        assert secret not in shown
    assert "trace-me" in shown and "gateway.example/v1" in shown


def gateway_bot(provider, history: Path, **kwargs) -> lmb.ImageBot:
    """gpt-image-2 through the fake server, with a gateway key in a header and the history on."""
    return lmb.ImageBot(
        model="gpt-image-2",
        api_base=provider.base,
        api_key="sk-test-key-000000",
        extra_headers={"X-Api-Key": CANARY},
        imagebot_history=history,
        **kwargs,
    )


def test_nested_header_secret_stays_out_of_files_and_history(provider, tmp_path):
    """A gateway key in extra_headers reaches the server, and nothing else: not the file, not the history."""
    provider.gpt_image([PNG])
    history = tmp_path / "history.sqlite3"
    path = gateway_bot(provider, history, imagebot_metadata=True)("A red fox")
    (request,) = provider.calls("/images/generations")
    assert request.headers["X-Api-Key"] == CANARY  # it was sent where it belongs
    info = lmb.image_info(path)
    assert info["provider"] == "openai" and "api_base" not in info["settings"]
    for where in (path.read_bytes(), json.dumps(info).encode(), stored_bytes(history)):
        assert CANARY.encode() not in where
        assert provider.base.encode() not in where  # the endpoint stays on this machine


def test_echoed_secret_is_scrubbed_from_errors_and_history(provider, tmp_path):
    """A server that echoes the header back in its error: the key is gone from the exception and the history."""
    provider.json_route(
        "/images/generations",
        {"error": {"message": f"Invalid gateway key {CANARY}", "type": "invalid_request_error"}},
        status=401,
    )
    history = tmp_path / "history.sqlite3"
    with pytest.raises(openai.APIError) as caught:
        gateway_bot(provider, history)("A red fox")
    text = str(caught.value) + " ".join(getattr(caught.value, "__notes__", []))
    assert CANARY not in text and "***" in text
    assert CANARY.encode() not in stored_bytes(history)


def test_signed_result_urls_are_stored_without_their_query(provider, tmp_path):
    """?sig= and X-Amz-Signature never reach the history; the user still gets the whole URL."""
    url = f"{provider.file('signed.png', PNG)}?sig=SIGSECRET123&X-Amz-Signature=AMZSECRET456"
    provider.json_route("/images/generations", {"created": 1, "data": [{"url": url}]})
    history = tmp_path / "history.sqlite3"
    bot = lmb.ImageBot(api_base=provider.base, api_key="sk-test-key-000000", imagebot_history=history)
    assert bot("A fox", return_url=True) == url
    stored = stored_bytes(history)
    assert b"SIGSECRET123" not in stored and b"AMZSECRET456" not in stored
    assert b"/files/signed.png" in stored


def test_command_output_and_history_never_show_the_key(provider, tmp_path):
    """The command, failing on an echoing server, and `imagebot history` afterwards: no key anywhere."""
    provider.json_route(
        "/images/generations",
        {"error": {"message": f"Invalid gateway key {CANARY}", "type": "invalid_request_error"}},
        status=401,
    )
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-test-key-000000",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "IMAGEBOT_HISTORY_DB": str(tmp_path / "history.sqlite3"),
    }
    headers = json.dumps({"X-Api-Key": CANARY})
    command = [
        sys.executable,
        "-m",
        "llamabot",
        "A fox",
        "--api-base",
        provider.base,
        "--set",
        f"extra_headers={headers}",
    ]
    run = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1
    history = subprocess.run(
        [sys.executable, "-m", "llamabot", "history"], capture_output=True, text=True, env=env, timeout=120
    )
    assert history.returncode == 0 and "gpt-image-2" in history.stdout
    for output in (run.stdout, run.stderr, history.stdout, history.stderr):
        assert CANARY not in output
