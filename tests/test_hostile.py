"""A hostile provider, a second run, a careless terminal: the second round of attacks (money, time, output)."""

from __future__ import annotations

import base64
import itertools
import json
import math
import sys
import threading
import time
from pathlib import Path

import litellm
import pytest
from werkzeug import Request, Response

import llamabot as lmb
from llamabot_imagebot import _history, _journal
from llamabot_imagebot.cli import main
from tests.fakes import PNG, b64, tagged


@pytest.mark.wire
@pytest.mark.parametrize("reported", [0, -1.0, "NaN", "Infinity", ...], ids=["zero", "negative", "nan", "inf", "none"])
def test_a_cap_is_not_opened_by_what_the_provider_reports(provider, reported):
    """A reported cost of 0, negative, NaN, infinite, or none at all: the first prompt's unknown price stops the rest."""
    provider.openrouter(cost=float(reported) if isinstance(reported, str) else reported, usage=reported is not ...)
    bot = lmb.ImageBot(model="openrouter/google/gemini-2.5-flash-image", api_base=provider.base, api_key="or-k")
    results = bot.generate_batch([f"p{i}" for i in range(20)], concurrency=4, return_url=True, max_cost=0.2)
    sent = len(provider.calls("/chat/completions"))
    assert sent <= 4
    assert sum(isinstance(result, lmb.NotSentError) for result in results) >= 16


def rate_limited(provider, **headers: str) -> None:
    """Recraft (litellm sends it one request per call on every version) answering 429 with ``headers``."""
    provider.route(
        "/v1/images/generations",
        lambda _r: Response(json.dumps({"error": {"message": "slow down"}}), 429, headers=headers),
    )


def recraft(provider, **settings) -> lmb.ImageBot:
    return lmb.ImageBot(model="recraft/recraftv3", api_base=provider.base, api_key="rc-key", **settings)


@pytest.mark.wire
@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "1e9"},
        {"Retry-After": "inf"},
        {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"retry-after-ms": "1e15"},
    ],
    ids=["1e9", "inf", "year-9999", "ms-1e15"],
)
def test_a_huge_retry_after_fails_at_once_and_the_next_call_too(provider, headers):
    """Retry-After far past the deadline: the call fails at once with a 429 saying how long was asked; the
    next call on the bot fails at once too (no hang, no OverflowError), without sending."""
    rate_limited(provider, **headers)
    fast = recraft(provider, timeout=5)
    start = time.monotonic()
    with pytest.raises(litellm.RateLimitError) as first:
        fast("A fox")
    text = str(first.value) + " ".join(getattr(first.value, "__notes__", []))
    assert "would pass the 5 s timeout" in text
    with pytest.raises(litellm.RateLimitError, match="asked to wait"):
        fast("A cat")
    assert time.monotonic() - start < 15  # 3 x headroom over what an idle machine needs
    assert len(provider.calls("/v1/images/generations")) == 1


@pytest.mark.wire
def test_an_unreadable_retry_after_counts_as_absent(provider):
    """`Retry-After: soon`: no ValueError; the usual backoff applies and the retries happen."""
    rate_limited(provider, **{"Retry-After": "soon"})
    with pytest.raises(litellm.RateLimitError):
        recraft(provider, num_retries=1, timeout=30)("A fox")
    assert len(provider.calls("/v1/images/generations")) == 2


def test_the_command_with_a_day_long_retry_after_ends_within_its_timeout(provider, monkeypatch, capsys):
    """A CLI batch told `Retry-After: 86400` with --timeout 20: every prompt fails promptly, saying why."""
    rate_limited(provider, **{"Retry-After": "86400"})
    monkeypatch.setenv("RECRAFT_API_KEY", "rc-key")
    start = time.monotonic()
    status = main(
        ["a", "b", "c", "-m", "recraft/recraftv3", "--timeout", "20", "--api-base", provider.base, "--no-history"]
    )
    assert status == 1 and time.monotonic() - start < 20
    assert capsys.readouterr().err.count("error:") == 3


@pytest.mark.parametrize("timeout", [math.inf, 1e10, math.nan, 0, -1])
def test_an_impossible_timeout_is_refused_when_the_bot_is_built(timeout):
    """timeout=inf, 1e10 or NaN would fail every call later (or pay first): refused at once."""
    with pytest.raises(ValueError, match="timeout"):
        lmb.ImageBot(model="gpt-image-2", timeout=timeout)


def test_the_command_refuses_an_impossible_timeout_and_a_file_as_dir(tmp_path, capsys):
    """`--timeout 1e10` and `--dir FILE` are bad usage (exit 2, one line), not tracebacks."""
    assert main(["A fox", "--timeout", "1e10"]) == 2
    file = tmp_path / "file.txt"
    file.write_text("x")
    assert main(["A fox", "--dir", str(file)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "is a file, not a folder" in err


@pytest.mark.wire
def test_two_runs_of_one_batch_in_one_folder_do_not_both_pay(provider, bot, tmp_path):
    """While a batch holds its folder, a second run of it is refused at once, having sent nothing."""
    provider.latency = 0.5
    provider.gpt_image()
    out = tmp_path / "out"
    first = bot().iter_batch([f"p{i}" for i in range(6)], concurrency=2, save_dir=out)
    next(first)  # the first run holds the folder's journal now
    sent = len(provider.calls("/images/generations"))
    with pytest.raises(lmb.FolderBusyError, match="wait for that one"):
        list(bot().iter_batch([f"p{i}" for i in range(6)], concurrency=2, save_dir=out))
    rest = list(first)
    assert len(rest) == 5 and len(provider.calls("/images/generations")) == 6 >= sent


@pytest.mark.wire
@pytest.mark.skipif(sys.platform == "win32", reason="file size limits (RLIMIT_FSIZE) are POSIX")
def test_a_failed_journal_append_still_returns_the_paid_image(provider, tmp_path):
    """The disk fills up as the journal is written: the image saved is returned, with a warning. A file size
    limit lets the journal take the prompt's planned name and the image be saved, then cuts the "saved" line short."""
    import subprocess

    provider.gpt_image()
    planned = _journal.planned_line("k" * 24, 0, "A fox", "a_fox")
    saved = _journal.saved_line("k" * 24, 0, "A fox", [Path("a_fox.png")], 0.04)
    limit = max(len(PNG), len(planned)) + 8
    assert limit < len(planned) + len(saved)
    script = f"""
import resource, signal, warnings
import llamabot as lmb
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
bot = lmb.ImageBot(model="gpt-image-2", api_base={provider.base!r}, api_key="sk-test")
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    results = bot.batch(["A fox"], save_dir="out")
print(results[0].is_file(), *(w.category.__name__ for w in caught))
for w in caught:
    print(w.message)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert lines and lines[0].split() == ["True", "JournalWarning"], done.stdout + done.stderr
    assert "may ask for them again" in done.stdout
    assert (tmp_path / "out" / "a_fox.png").read_bytes() == PNG
    # The part of the line that got in is taken back: the journal holds whole lines only (the planned name).
    journal = (tmp_path / "out" / _journal.NAME).read_bytes()
    assert journal.endswith(b"\n") and journal.count(b"\n") == 1 and b'"stem": "a_fox"' in journal


@pytest.mark.wire
@pytest.mark.skipif(sys.platform == "win32", reason="file size limits (RLIMIT_FSIZE) are POSIX")
def test_a_prompt_whose_name_the_journal_cannot_take_is_not_sent(provider, tmp_path):
    """The disk is full before the second prompt's planned name is written: the first image is returned, then the
    batch raises the OSError, and the second prompt is never sent (a resumed run could not find what it paid for)."""
    import subprocess

    provider.gpt_image()
    planned = _journal.planned_line("k" * 24, 0, "A fox", "a_fox")
    limit = max(len(PNG), len(planned)) + 8
    script = f"""
import resource, signal, warnings
import llamabot as lmb
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
warnings.simplefilter("ignore")
bot = lmb.ImageBot(model="gpt-image-2", api_base={provider.base!r}, api_key="sk-test")
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
made = []
try:
    for result in bot.iter_batch(["A fox", "A cat"], concurrency=1, save_dir="out"):
        made.append(result.prompt)
except OSError as exc:
    print(made, exc.errno)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "['A fox'] 27", done.stdout + done.stderr  # EFBIG
    assert [call.json["prompt"] for call in provider.calls("/images/generations")] == ["A fox"]
    assert (tmp_path / "out" / "a_fox.png").read_bytes() == PNG


@pytest.mark.wire
def test_a_prompt_with_a_lone_surrogate_fails_alone(provider, bot, tmp_path):
    """One prompt with a lone surrogate in a saved batch: the others are made, the batch does not raise."""
    provider.gpt_image()
    results = bot(imagebot_metadata=True).batch(["a fox", "bad \ud800 prompt", "a cat"], save_dir=tmp_path / "out")
    assert results[0].is_file() and results[2].is_file()


@pytest.mark.wire
def test_a_proxys_basic_auth_is_scrubbed_in_its_encoded_form(provider, tmp_path):
    """An endpoint's user:password becomes a Basic header; echoed back, its base64 is gone from error and history."""
    encoded = base64.b64encode(b"alice:s3cret-pass").decode()

    def echo(request: Request) -> Response:
        message = f"bad credentials {request.headers.get('Authorization', '')} / {encoded}"
        return Response(json.dumps({"error": {"message": message}}), 401, content_type="application/json")

    provider.route("/images/generations", echo)
    history = tmp_path / "h.sqlite3"
    base = provider.base.replace("http://", "http://alice:s3cret-pass@")
    bot = lmb.ImageBot(model="gpt-image-2", api_base=base, api_key="sk-test-000000", imagebot_history=history)
    with pytest.raises(Exception) as caught:
        bot("A fox")
    text = str(caught.value) + " ".join(getattr(caught.value, "__notes__", []))
    assert encoded not in text and "s3cret-pass" not in text
    assert encoded.encode() not in history.read_bytes()


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"


@pytest.mark.wire
def test_escape_sequences_from_outside_never_reach_the_terminal(provider, capsys, monkeypatch, tmp_path):
    """A revised prompt, an error text, a stored prompt: shown with their control characters removed; --json exact."""

    def answer(request: Request) -> Response:
        prompt = json.loads(request.get_data())["prompt"]
        if "fail" in prompt:
            return Response(json.dumps({"error": {"message": f"no {ESCAPES}"}}), 400, content_type="application/json")
        body = {"created": 1, "data": [{"b64_json": b64(tagged(b"x")), "revised_prompt": f"fox {ESCAPES}"}]}
        return Response(json.dumps(body), 200, content_type="application/json")

    provider.route("/images/generations", answer)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    main([f"A fox {ESCAPES}", "please fail", "-m", "dall-e-3", "--api-base", provider.base])
    main(["history"])
    saved = next(tmp_path.glob("*.png"))
    main(["info", str(saved)])
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert "\x1b" not in stream and "\x07" not in stream and "\x9b" not in stream
    main(["history", "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(ESCAPES in row["prompt"] for row in rows)  # --json stays exact


def test_info_on_a_missing_file_says_so(capsys):
    """`imagebot info nonexist.png`: "does not exist", exit 1."""
    assert main(["info", "nonexist.png"]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.wire
def test_a_search_with_no_match_is_not_an_empty_history(provider, bot, capsys):
    """`history --search X` with no match, and `--limit 0`, say that nothing matched, with the count."""
    provider.gpt_image()
    bot(imagebot_history=True)("A fox")
    assert main(["history", "--search", "zebra"]) == 0
    assert "Nothing matched (1 generations" in capsys.readouterr().err
    assert main(["history", "--limit", "0"]) == 0
    assert "Nothing matched" in capsys.readouterr().err
    assert _history.count() == 1


@pytest.mark.wire
def test_a_provider_that_stalls_holds_no_thread(provider):
    """(Regression) a call that hits a 429 does not leave threads waiting behind the caller."""
    rate_limited(provider, **{"Retry-After": "1"})
    before = threading.active_count()
    with pytest.raises(litellm.RateLimitError):
        recraft(provider, num_retries=0)("A fox")
    time.sleep(0.3)
    assert threading.active_count() <= before + 1


@pytest.mark.wire
def test_requests_per_minute_holds_while_429s_come_back(provider):
    """requests_per_minute=4 with every answer a 429 and retries on: no 60 s window ever holds more than
    4 requests, retries included (driven by a fake clock, so the minute takes no time)."""
    from llamabot_imagebot._throttle import Throttle
    from tests.fakes import FakeClock

    clock = FakeClock(1000.0)
    sent: list[float] = []

    def limited(_request: Request) -> Response:
        sent.append(clock.now())
        return Response(json.dumps({"error": {"message": "slow down"}}), 429)

    provider.route("/v1/images/generations", limited)
    bot = recraft(provider, requests_per_minute=4, num_retries=2)
    bot._clock = clock
    bot._throttle = Throttle(4, clock)
    for _ in range(3):
        with pytest.raises(litellm.RateLimitError):
            bot("A fox")
    assert len(sent) == 9
    assert all(b - a >= 15.0 - 1e-6 for a, b in itertools.pairwise(sent))
    assert max(sum(1 for t in sent if start <= t < start + 60) for start in sent) <= 4
