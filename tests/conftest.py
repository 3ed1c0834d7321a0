"""Shared fixtures: an isolated working folder and environment, and a fake provider."""

from __future__ import annotations

import os

# Before anything imports litellm: it would otherwise fetch a price list (no network here).
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

import llamabot as lmb
from tests.fakes import FakeProvider

_PROVIDER_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "AZURE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_API_BASE",
    "AZURE_API_VERSION",
    "OPENROUTER_API_KEY",
    "OPENROUTER_API_BASE",
    "RECRAFT_API_KEY",
    "RECRAFT_API_BASE",
    "GEMINI_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION_NAME",
    "AWS_BEARER_TOKEN_BEDROCK",
    "XAI_API_KEY",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, tmp_path_factory, monkeypatch) -> Iterator[None]:
    """Run every test in an empty working folder with no real provider credentials."""
    monkeypatch.chdir(tmp_path)
    for name in _PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in ("IMAGEBOT_METADATA", "IMAGEBOT_HISTORY"):
        monkeypatch.delenv(name, raising=False)
    # Never touch the real user's history.
    monkeypatch.setenv("IMAGEBOT_HISTORY_DB", str(tmp_path_factory.mktemp("history") / "history.sqlite3"))
    yield


@pytest.fixture
def interruptible() -> Iterator[None]:
    """Commands started in this test can be interrupted with SIGINT, however the suite was started.

    A shell starts a background job with SIGINT ignored, and an ignored signal stays ignored
    across exec: Python then installs no Ctrl-C handler in the command under test. A handler
    is reset to the default at exec, so one set here gives every child a working SIGINT.
    """
    import signal

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="session")
def _server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def provider(_server: HTTPServer) -> Iterator[FakeProvider]:
    """A local HTTP server impersonating image providers, reset for each test."""
    _server.clear()
    fake = FakeProvider(_server)
    yield fake
    _server.clear()


@pytest.fixture
def bot(provider: FakeProvider):
    """Make an ImageBot that talks to the fake provider: ``bot(quality="low")`` (gpt-image-2 unless ``model=``)."""

    def make(**settings: object) -> lmb.ImageBot:
        return lmb.ImageBot(**{"model": "gpt-image-2", "api_base": provider.base, "api_key": "sk-test", **settings})

    return make
