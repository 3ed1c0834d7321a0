"""Fault injection: failures, delays, Retry-After and refusals against the local fake provider.

Attempts are counted on the server, time with a monotonic clock, files on disk.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import litellm
import openai
import pytest
from werkzeug import Response

import llamabot as lmb
from llamabot_imagebot import _retry, _routing, _transport
from tests.fakes import PNG, b64

OK_BODY = json.dumps({"created": 1, "data": [{"b64_json": b64(PNG)}]})


def scripted(provider, path: str, answers: list[tuple[int, dict | None, dict]]) -> None:
    """Answer successive requests to ``path`` with (status, headers, json body); the last one repeats."""
    queue = list(answers)

    def answer(_request):
        status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
        return Response(json.dumps(body), status, headers=headers or {}, content_type="application/json")

    provider.route(path, answer)


def ok() -> tuple[int, dict, dict]:
    return 200, {}, json.loads(OK_BODY)


def failure(status: int, **headers: str) -> tuple[int, dict, dict]:
    return status, headers, {"error": {"message": f"status {status}", "type": "server_error"}}


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_failures_are_retried_then_succeed(provider, status, bot):
    """Two transient failures, then success: three attempts reach the server, the image is saved."""
    scripted(
        provider,
        "/images/generations",
        [failure(status, **{"Retry-After": "0"}), failure(status, **{"Retry-After": "0"}), ok()],
    )
    path = bot()("A fox")
    assert len(provider.calls("/images/generations")) == 3
    assert path.read_bytes() == PNG


#: Whether this litellm passes a per-call max_retries to the OpenAI SDK (1.109 and later).
SWITCHABLE = _transport.litellm_version() >= _transport.PER_CALL_MAX_RETRIES_SINCE


@pytest.mark.parametrize("retries", [0, 1, 2, 3, 5])
def test_num_retries_is_the_number_of_retries_on_the_openai_path(provider, retries, bot):
    """num_retries + 1 requests reach the server, however many the OpenAI SDK would make on its own.

    On a litellm that cannot switch the SDK's retries off (before 1.109) a call makes 3, and
    ImageBot calls litellm as many times as needed to cover num_retries + 1 (documented).
    """
    scripted(provider, "/images/generations", [failure(500, **{"Retry-After": "0"})])
    with pytest.raises(litellm.InternalServerError):
        bot(num_retries=retries)("A fox")
    expected = retries + 1 if SWITCHABLE else -(-(retries + 1) // 3) * 3
    assert len(provider.calls("/images/generations")) == expected


@pytest.mark.parametrize(
    ("model", "path", "extra"),
    [
        ("gpt-image-2", "/images/generations", {}),
        ("xai/grok-2-image", "/images/generations", {}),
        ("azure/img-prod", "/openai/deployments/img-prod/images/generations", {"api_version": "2025-04-01-preview"}),
        ("openrouter/google/gemini-2.5-flash-image", "/chat/completions", {}),
        ("recraft/recraftv3", "/v1/images/generations", {}),
    ],
)
def test_no_retries_is_exactly_one_request_on_every_provider(provider, model, path, extra):
    """num_retries=0 on a failing 503: exactly one request, whatever SDK sits under litellm."""
    if not SWITCHABLE and model.split("/")[0] in ("gpt-image-2", "xai"):
        pytest.skip("litellm before 1.109 cannot switch the OpenAI SDK's retries off (documented)")
    scripted(provider, path, [failure(503, **{"Retry-After": "0"})])
    bot = lmb.ImageBot(model=model, api_base=provider.base, api_key="k-test", num_retries=0, **extra)
    with pytest.raises(openai.APIError):
        bot("A fox")
    assert len(provider.calls(path)) == 1


def test_max_retries_zero_is_sent_to_the_openai_path(mocker):
    """On a litellm that passes it on, ImageBot sends max_retries=0 to the SDK path, and nothing to others."""
    from litellm.types.utils import ImageObject, ImageResponse

    patched = mocker.patch(
        "litellm.image_generation", return_value=ImageResponse(data=[ImageObject(b64_json=b64(PNG))])
    )
    lmb.ImageBot(model="gpt-image-2").generate("A fox")
    assert patched.call_args.kwargs.get("max_retries") == (0 if SWITCHABLE else None)
    lmb.ImageBot(model="recraft/recraftv3").generate("A fox")
    assert "max_retries" not in patched.call_args.kwargs
    lmb.ImageBot(model="gpt-image-2", max_retries=1).generate("A fox")  # the user's own value is forwarded
    assert patched.call_args.kwargs["max_retries"] == 1


@pytest.mark.skipif(not SWITCHABLE, reason="litellm before 1.109 retries in the SDK after ImageBot gave up")
def test_no_request_reaches_the_provider_after_a_call_has_raised(provider, bot):
    """4 calls that time out (timeout=1, num_retries=0): 4 requests arrive, and none after the calls raised."""
    provider.latency = 2.5
    scripted(provider, "/images/generations", [ok()])
    bot = bot(timeout=1, num_retries=0)
    for _ in range(4):
        with pytest.raises(litellm.Timeout):
            bot("A fox")
    raised = len(provider.calls("/images/generations"))
    time.sleep(3)  # the SDK's own retry would come after its 1 s timeout and a backoff under 1 s
    assert raised == 4 and len(provider.calls("/images/generations")) == 4


@pytest.fixture
def fresh_retry_facts():
    """What ImageBot learned about litellm's retries this process, restored after the test."""
    ignored = _transport.max_retries_ignored.is_set()
    warned = set(_transport._warned)
    _transport.max_retries_ignored.clear()
    _transport._warned.discard("sdk-retries")
    yield
    _transport._warned.clear()
    _transport._warned.update(warned)
    (_transport.max_retries_ignored.set if ignored else _transport.max_retries_ignored.clear)()


def test_an_sdk_that_retries_anyway_is_detected_and_counted(fresh_retry_facts):
    """A failure whose request says the SDK retried twice, although max_retries=0 was sent: a warning once,
    3 requests counted for that call, and the SDK's 3 attempts counted from then on."""
    import httpx

    request = httpx.Request("POST", "http://127.0.0.1/images/generations", headers={"x-stainless-retry-count": "2"})
    error = openai.InternalServerError("boom", response=httpx.Response(500, request=request), body=None)
    with pytest.warns(lmb.DependencyChangedWarning, match="max_retries"):
        assert _retry.requests_made(error, {"max_retries": 0}, "openai") == 3
    assert _transport.requests_per_call("openai", {"max_retries": 0}) == 3
    assert _retry.requests_made(error, {"max_retries": 0}, "openai") == 3  # no second warning (pytest would fail on it)


@pytest.mark.skipif(SWITCHABLE, reason="this litellm passes max_retries on: nothing to warn about")
def test_an_explicit_num_retries_on_an_old_litellm_warns_of_the_sdks_attempts(provider, fresh_retry_facts, bot):
    """Before litellm 1.109 the SDK path makes 3 requests a call: an explicit num_retries says so, once."""
    scripted(provider, "/images/generations", [ok()])
    with pytest.warns(lmb.DependencyChangedWarning, match="num_retries=0 can make 3"):
        bot(num_retries=0)("A fox")


def test_num_retries_is_consumed_not_forwarded(mocker):
    """num_retries never reaches litellm (its image generation ignores it)."""
    from litellm.types.utils import ImageObject, ImageResponse

    patched = mocker.patch(
        "litellm.image_generation", return_value=ImageResponse(data=[ImageObject(b64_json=b64(PNG))])
    )
    lmb.ImageBot(model="gpt-image-2", num_retries=5)("A fox")
    assert "num_retries" not in patched.call_args.kwargs


@pytest.mark.parametrize(
    ("model", "path", "extra"),
    [
        ("azure/img-prod", "/openai/deployments/img-prod/images/generations", {"api_version": "2025-04-01-preview"}),
        ("openrouter/google/gemini-2.5-flash-image", "/chat/completions", {}),
        ("recraft/recraftv3", "/v1/images/generations", {}),
    ],
)
def test_other_providers_are_retried_too(provider, model, path, extra):
    """Providers litellm never retries (Azure included) get num_retries + 1 attempts as well."""
    scripted(provider, path, [failure(503, **{"Retry-After": "0"})])
    bot = lmb.ImageBot(model=model, api_base=provider.base, api_key="k-test", num_retries=1, **extra)
    with pytest.raises(openai.APIError):
        bot("A fox")
    assert len(provider.calls(path)) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_never_retried(provider, status, bot):
    """400, 401, 403 and 404 are answered once."""
    scripted(provider, "/images/generations", [failure(status)])
    with pytest.raises(openai.APIError):
        bot()("A fox")
    assert len(provider.calls("/images/generations")) == 1


def test_content_policy_refusal_is_not_retried(provider, bot):
    """A content-policy 400 is final."""
    body = {
        "error": {
            "message": "Your request was rejected as a result of our safety system.",
            "code": "content_policy_violation",
            "type": "invalid_request_error",
        }
    }
    scripted(provider, "/images/generations", [(400, {}, body)])
    with pytest.raises(litellm.BadRequestError):
        bot()("A fox")
    assert len(provider.calls("/images/generations")) == 1


def test_retry_after_is_honoured(provider, bot):
    """A 429 with Retry-After: 1 waits about a second before the next attempt."""
    scripted(provider, "/images/generations", [failure(429, **{"Retry-After": "1"}), ok()])
    start = time.monotonic()
    bot()("A fox")
    assert time.monotonic() - start >= 1.0
    assert len(provider.calls("/images/generations")) == 2


def test_retry_after_beyond_the_budget_gives_up_at_once(provider):
    """Where ImageBot owns the retries, a wait that would overrun the timeout is not taken."""
    scripted(provider, "/v1/images/generations", [failure(429, **{"Retry-After": "30"})])
    bot = lmb.ImageBot(model="recraft/recraftv3", api_base=provider.base, api_key="k-test", timeout=5)
    start = time.monotonic()
    with pytest.raises(litellm.RateLimitError) as caught:
        bot("A fox")
    assert time.monotonic() - start < 3
    (note,) = [n for n in caught.value.__notes__ if "stopped retrying" in n]
    assert "1 attempt in" in note and "5 s timeout" in note
    assert len(provider.calls("/v1/images/generations")) == 1


def test_a_retry_after_beyond_the_timeout_ends_the_call_at_once(provider, bot):
    """A 429 asking for 30 s, with 3 s left: one request, and the call says why it stopped retrying.

    Before litellm 1.109 the SDK waits out Retry-After itself: the call still ends at its timeout.
    """
    scripted(provider, "/images/generations", [failure(429, **{"Retry-After": "30"})])
    start = time.monotonic()
    if SWITCHABLE:
        with pytest.raises(litellm.RateLimitError) as caught:
            bot(timeout=3)("A fox")
        assert "next wait (30.0 s) would pass the 3 s timeout" in "\n".join(getattr(caught.value, "__notes__", []))
    else:
        with pytest.raises(litellm.Timeout, match="gave up"):
            bot(timeout=3)("A fox")
    assert time.monotonic() - start < 10  # 3 s at most (3 x headroom); waiting out Retry-After would be 30 s
    assert len(provider.calls("/images/generations")) == 1


IMAGEN_PATH = "/v1/projects/p/locations/us-central1/publishers/google/models/imagen:predict"
#: Every provider whose timeout holds on litellm's sync path (``timeout_holds``): model, path, extra settings.
TIMEOUT_HOLDS = {
    "openai": ("gpt-image-2", "/images/generations", {}),
    "azure": (
        "azure/img-prod",
        "/openai/deployments/img-prod/images/generations",
        {"api_version": "2025-04-01-preview"},
    ),
    "xai": ("xai/grok-2-image", "/images/generations", {}),
    "openrouter": ("openrouter/google/gemini-2.5-flash-image", "/chat/completions", {}),
    "recraft": ("recraft/recraftv3", "/v1/images/generations", {}),
    "gemini": ("gemini/gemini-2.5-flash-image", "/models/gemini-2.5-flash-image:generateContent", {}),
    "vertex_ai": ("vertex_ai/imagen-3.0-generate-002", IMAGEN_PATH, {"base": IMAGEN_PATH}),
    "bedrock": (
        "bedrock/amazon.nova-canvas-v1:0",
        "/model/amazon.nova-canvas-v1:0/invoke",
        {"aws_region_name": "us-east-1"},
    ),
}


def test_every_provider_whose_timeout_holds_is_tested():
    """The table's ``timeout_holds`` and this file's list name the same providers."""
    assert {name for name, facts in _routing.PROVIDERS.items() if facts.get("timeout_holds")} == set(TIMEOUT_HOLDS)


@pytest.mark.parametrize("name", sorted(TIMEOUT_HOLDS))
def test_timeout_bounds_the_whole_call(provider, name):
    """A provider that hangs for 8 s: the call raises within its 1 s timeout (idle: about 1 s), nothing is saved.

    A call's attempt runs in the caller's thread on these providers: their timeout holds on litellm's
    sync path (bedrock's through the client ImageBot gives each attempt).
    """
    model, path, extra = TIMEOUT_HOLDS[name]
    extra = dict(extra)
    provider.latency = 8
    scripted(provider, path, [ok()])
    base = provider.base + extra.pop("base", "")
    bot = lmb.ImageBot(model=model, api_base=base, api_key="k-test", timeout=1, num_retries=0, **extra)
    start = time.monotonic()
    with pytest.raises(litellm.Timeout):
        bot("A fox")
    assert time.monotonic() - start < 3.5
    assert list(Path.cwd().iterdir()) == []


def test_a_call_waits_in_its_own_thread_and_a_batch_item_in_a_worker(mocker):
    """bot(prompt) calls litellm in the caller's thread (no hand-off); a batch's item in a worker that Ctrl-C can leave."""
    seen = []

    def generation(**_kwargs):
        seen.append(threading.current_thread())
        return litellm.ImageResponse(data=[{"b64_json": b64(PNG)}])

    mocker.patch("litellm.image_generation", side_effect=generation)
    bot = lmb.ImageBot(model="recraft/recraftv3", api_key="k-test")
    bot("A fox", return_url=True)
    bot.batch(["A cat"], return_url=True)
    assert seen[0] is threading.current_thread()
    assert seen[1].name == "imagebot-request"


def test_an_attempt_that_overran_its_timeout_is_said_and_bounded_from_then_on(provider, fresh_overrun_facts):
    """A provider sending its answer in slices every 0.25 s, each within the read timeout: the first call's
    late answer is kept with a warning; from then on its requests are bounded, and the next call ends at 0.5 s."""

    def dribbled(_request):
        def body():
            for start in range(0, len(OK_BODY), len(OK_BODY) // 10 + 1):
                time.sleep(0.25)
                yield OK_BODY[start : start + len(OK_BODY) // 10 + 1].encode()

        return Response(body(), 200, content_type="application/json")

    provider.route("/v1/images/generations", dribbled)
    bot = lmb.ImageBot(model="recraft/recraftv3", api_base=provider.base, api_key="k-test", timeout=0.5, num_retries=0)
    with pytest.warns(lmb.DependencyChangedWarning, match=r"took \d+\.\d s longer than the time it had"):
        assert bot("A fox", return_url=True).startswith("data:image/png")
    start = time.monotonic()
    with pytest.raises(litellm.Timeout):
        bot("A fox", return_url=True)
    assert time.monotonic() - start < 2.0  # bounded at 0.5 s (3 x headroom and more); unbounded: 2.5 s
    assert len(provider.calls("/v1/images/generations")) == 2


@pytest.fixture
def fresh_overrun_facts():
    overran = set(_retry._overran)
    _retry._overran.clear()
    yield
    _retry._overran.clear()
    _retry._overran.update(overran)


def test_timeout_bounds_the_async_call(provider, bot):
    """The async path is bounded the same way."""
    provider.latency = 4
    scripted(provider, "/images/generations", [ok()])
    start = time.monotonic()
    with pytest.raises(litellm.Timeout):
        asyncio.run(bot(timeout=1).acall("A fox"))
    assert time.monotonic() - start < 2


def test_timeout_includes_the_download(provider):
    """A slow image download counts against the same budget; nothing partial is left."""
    provider.route("/files/slow", lambda _r: (time.sleep(3), Response(PNG, 200, content_type="image/png"))[1], "GET")
    provider.json_route("/images/generations", {"created": 1, "data": [{"url": f"{provider.base}/files/slow"}]})
    bot = lmb.ImageBot(model="dall-e-3", api_base=provider.base, api_key="sk-test", timeout=1)
    start = time.monotonic()
    with pytest.raises(lmb.ImageDownloadError, match="Timed out|timed out|ReadTimeout|Timeout"):
        bot("A fox")
    assert time.monotonic() - start < 2
    assert list(Path.cwd().iterdir()) == []


def test_retries_stay_within_the_timeout(provider, bot):
    """Slow failures are retried only while time is left; the total stays under timeout + 1 s."""
    provider.latency = 0.6
    scripted(provider, "/images/generations", [failure(503, **{"Retry-After": "0"})])
    start = time.monotonic()
    with pytest.raises(openai.APIError):
        bot(timeout=1.5, num_retries=10)("A fox")
    assert time.monotonic() - start < 2.5
    assert len(provider.calls("/images/generations")) <= 3


@pytest.mark.parametrize(
    ("path", "model", "payload"),
    [
        ("/images/generations", "gpt-image-2", {"created": 1, "data": []}),
        ("/images/generations", "gpt-image-2", {"error": {"message": "rejected", "code": "content_policy_violation"}}),
        (
            "/chat/completions",
            "openrouter/google/gemini-2.5-flash-image",
            {
                "id": "g",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "I can't draw that."},
                    }
                ],
            },
        ),
    ],
)
def test_200_without_an_image_is_a_value_error(provider, path, model, payload):
    """Empty answers (text only, error object, no data) raise ValueError and save nothing."""
    provider.json_route(path, payload)
    bot = lmb.ImageBot(model=model, api_base=provider.base, api_key="k-test")
    with pytest.raises(ValueError, match="without an image|No images found in response") as caught:
        bot("A fox")
    if "error" in payload:
        assert "content_policy_violation" in str(caught.value)  # the provider's reason is kept
    assert list(Path.cwd().iterdir()) == []


def test_canary_key_never_leaks(provider, caplog, capsys, monkeypatch):
    """A planted key appears in no repr, str, log record, warning, exception text or printed output."""
    import logging
    import warnings

    canary = "sk-canary-everywhere-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    caplog.set_level(logging.DEBUG)
    provider.json_route(
        "/images/generations",
        {
            "error": {
                "message": f"Incorrect API key provided: {canary}",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
        status=401,
    )
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bot = lmb.ImageBot(
            model="gpt-image-2", api_base=provider.base, api_key=canary, style="vivid", response_format="b64_json"
        )
        seen += [repr(bot), str(bot), str(vars(bot).get("image_generation_kwargs"))]
        with pytest.raises(litellm.AuthenticationError) as error:
            bot("A fox")
        for exc in (error.value, error.value.__cause__, error.value.__context__):
            if exc is not None:
                seen += [str(exc), repr(exc), repr(exc.args), *getattr(exc, "__notes__", [])]
        with pytest.raises(litellm.AuthenticationError) as again:
            asyncio.run(bot.acall("A fox"))
        seen += [str(again.value), repr(again.value.args)]
        results = bot.batch(["A fox"], progress=False)
        seen += [str(results), repr(results[0].args)]
    seen += [str(w.message) for w in caught]
    seen += [record.getMessage() for record in caplog.records]
    captured = capsys.readouterr()
    seen += [captured.out, captured.err]
    assert any("response_format" in s or "style" in s for s in seen)  # warnings were captured
    assert not [s for s in seen if canary in s]


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_the_command_with_no_partial_files(provider, tmp_path, signal_name, interruptible):
    """SIGINT (Ctrl-C) or SIGTERM while an image is downloading: exit 130, no temporary or partial file left."""
    import os
    import signal
    import subprocess
    import sys

    def slow_body():
        yield PNG
        for _ in range(200):
            time.sleep(0.05)
            yield b"\0" * 1024

    provider.route("/files/slow", lambda _r: Response(slow_body(), 200, content_type="image/png"), "GET")
    provider.json_route("/images/generations", {"created": 1, "data": [{"url": f"{provider.base}/files/slow"}]})
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llamabot",
            "A fox",
            "--model",
            "dall-e-3",
            "--dir",
            str(out),
            "--api-base",
            provider.base,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not provider.calls("/files/slow"):
        time.sleep(0.05)
    assert provider.calls("/files/slow"), "the download never started"
    time.sleep(0.2)
    process.send_signal(getattr(signal, signal_name))
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert [path.name for path in out.iterdir()] == [".imagebot-journal.jsonl"]  # what was planned; nothing saved


def test_users_own_openai_and_httpx_calls_are_untouched_during_an_imagebot_call(provider, mocker):
    """Code running inside an ImageBot call (a litellm callback, say) gets the SDK's own retries and plain httpx."""
    import httpx
    from litellm.types.utils import ImageObject, ImageResponse
    from openai._models import FinalRequestOptions

    scripted(provider, "/user/images/generations", [failure(500, **{"Retry-After": "0"})])
    provider.json_route("/user/big.json", {"b64_json": b64(PNG) * 4}, method="GET")
    before = (dict(vars(httpx.Response)), dict(vars(FinalRequestOptions)))
    seen = {}

    def users_code_inside_the_call(**kwargs):
        client = openai.OpenAI(api_key="sk-user", base_url=provider.base + "/user", max_retries=2)
        with pytest.raises(openai.InternalServerError):
            client.images.generate(model="gpt-image-2", prompt="theirs")
        seen["body"] = httpx.get(provider.base + "/user/big.json").json()["b64_json"]
        return ImageResponse(data=[ImageObject(b64_json=b64(PNG))])

    mocker.patch("litellm.image_generation", side_effect=users_code_inside_the_call)
    lmb.ImageBot(model="gpt-image-2")("A fox")
    assert len(provider.calls("/user/images/generations")) == 3  # the SDK's max_retries=2, as the user set it
    assert seen["body"] == b64(PNG) * 4
    assert (dict(vars(httpx.Response)), dict(vars(FinalRequestOptions))) == before


@pytest.mark.parametrize(
    ("api_base", "host", "reason"),
    [
        ("http://127.0.0.1:1", "127.0.0.1", "refused"),
        ("http://no-such-host.invalid", "no-such-host.invalid", "could not be resolved"),
    ],
)
def test_unreachable_host_is_named_and_not_retried(api_base, host, reason):
    """A refused connection to this machine or an unknown host: one clear note naming the host, no retries."""

    bot = lmb.ImageBot(model="recraft/recraftv3", api_base=api_base, api_key="k-secret-value-123", timeout=20)
    start = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        bot("A fox")
    assert time.monotonic() - start < 5  # no backoff rounds
    (note,) = [n for n in caught.value.__notes__ if n.startswith("Could not connect")]
    assert host in note and reason in note and "k-secret-value-123" not in note
    assert not _retry.is_transient(caught.value)


def _connections_to(port: int) -> int:
    """This machine's established TCP connections to ``port`` (the client ends: remote port = ``port``)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def _attempt_threads() -> int:
    import threading

    return sum(1 for thread in threading.enumerate() if thread.name == "imagebot-request")


@pytest.mark.parametrize(
    ("model", "path", "extra", "grace"),
    [
        # bedrock's sync path ignores litellm's timeout: ImageBot bounds it with its own client.
        (
            "bedrock/amazon.nova-canvas-v1:0",
            "/model/amazon.nova-canvas-v1:0/invoke",
            {"aws_region_name": "us-east-1"},
            5,
        ),
        ("recraft/recraftv3", "/v1/images/generations", {}, 5),
        # The OpenAI SDK retries a timed-out attempt twice on its own: 3 x timeout, plus its backoff.
        ("gpt-image-2", "/images/generations", {}, 10),
    ],
)
def test_timed_out_calls_leave_no_thread_or_connection_behind(provider, model, path, extra, grace):
    """20 calls that hit their timeout against a server that never answers: no attempt thread, no connection stays.

    The grace covers a loaded machine; without ImageBot's bounded client, bedrock's 20 attempts
    would stay for the server's full 60 s.
    """
    provider.latency = 60
    scripted(provider, path, [ok()])
    port = int(provider.base.rsplit(":", 1)[1])
    bot = lmb.ImageBot(model=model, api_base=provider.base, api_key="k-test", timeout=0.5, num_retries=0, **extra)
    # Earlier tests may have left attempts of their own (the SDK waiting out a Retry-After).
    before = (_attempt_threads(), _connections_to(port))
    for _ in range(20):
        with pytest.raises(litellm.Timeout):
            bot("A fox")
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (_attempt_threads() > before[0] or _connections_to(port) > before[1]):
        time.sleep(0.05)
    assert _attempt_threads() <= before[0] and _connections_to(port) <= before[1]
