"""Refusals: each provider's "no" becomes one RefusedError, after exactly one request, and a batch goes on."""

from __future__ import annotations

import asyncio
import json

import litellm
import pytest
from werkzeug import Request, Response

import llamabot as lmb
from llamabot_imagebot import _history
from llamabot_imagebot.cli import main
from tests.fakes import PNG, b64, tagged

OPENAI_NO = {
    "error": {
        "code": "moderation_blocked",
        "type": "image_generation_user_error",
        "message": "Your request was rejected by the safety system.",
        "param": None,
    }
}
AZURE_NO = {
    "error": {
        "code": "content_policy_violation",
        "message": "Your request was rejected as a result of our safety system.",
        "inner_error": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_results": {
                "violence": {"filtered": True, "severity": "high"},
                "hate": {"filtered": False, "severity": "safe"},
            },
        },
    }
}
GEMINI_NO = {"candidates": [{"finishReason": "IMAGE_SAFETY", "content": {"parts": []}}]}
IMAGEN_NO = {"predictions": [{"raiFilteredReason": "The image was blocked for violating the usage guidelines."}]}
IMAGEN_PATH = "/v1/projects/p/locations/us-central1/publishers/google/models/imagen:predict"


def openai_bot(provider, **kwargs):
    return lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test", **kwargs)


def azure_bot(provider, **kwargs):
    return lmb.ImageBot(
        model="azure/img-prod", api_base=provider.base, api_key="k", api_version="2025-04-01-preview", **kwargs
    )


def gemini_bot(provider, **kwargs):
    return lmb.ImageBot(model="gemini/gemini-2.5-flash-image", api_base=provider.base, api_key="k", **kwargs)


def imagen_bot(provider, **kwargs):
    url = f"{provider.base}{IMAGEN_PATH}"
    return lmb.ImageBot(model="vertex_ai/imagen-3.0-generate-002", api_base=url, api_key="vx", **kwargs)


SIGNALS = {
    "openai": (openai_bot, "/images/generations", OPENAI_NO, 400, "moderation_blocked", "safety system"),
    "azure": (
        azure_bot,
        "/openai/deployments/img-prod/images/generations",
        AZURE_NO,
        400,
        "content_policy_violation",
        "violence",
    ),
    "gemini": (
        gemini_bot,
        "/models/gemini-2.5-flash-image:generateContent",
        GEMINI_NO,
        200,
        "IMAGE_SAFETY",
        "IMAGE_SAFETY",
    ),
    "imagen": (imagen_bot, IMAGEN_PATH, IMAGEN_NO, 200, "raiFilteredReason", "usage guidelines"),
}


@pytest.mark.wire
@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_each_providers_refusal_is_one_refused_error_after_one_request(provider, name):
    """The provider's signal raises RefusedError with its code and reason; exactly one request, never retried."""
    make, path, body, status, code, reason = SIGNALS[name]
    provider.json_route(path, body, status=status)
    with pytest.raises(lmb.RefusedError) as caught:
        make(provider, num_retries=3)("Something it refuses")
    error = caught.value
    assert isinstance(error, litellm.ContentPolicyViolationError) and isinstance(error, lmb.ImageBotError)
    assert error.code == code and reason in (error.reason or "") and error.model
    assert error.stage in ("prompt", "input", "output", "unknown")
    assert len(provider.calls(path)) == 1


@pytest.mark.wire
@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_async_calls_refuse_alike(provider, name):
    """agenerate: the same RefusedError, the same single request."""
    make, path, body, status, code, _ = SIGNALS[name]
    provider.json_route(path, body, status=status)
    with pytest.raises(lmb.RefusedError) as caught:
        asyncio.run(make(provider).agenerate("Something it refuses"))
    assert caught.value.code == code and len(provider.calls(path)) == 1


@pytest.mark.wire
def test_an_edit_is_refused_alike(provider):
    """An edit OpenAI refuses: RefusedError, one request, sync and async."""
    provider.json_route("/images/edits", OPENAI_NO, status=400)
    with pytest.raises(lmb.RefusedError, match="moderation_blocked"):
        openai_bot(provider).edit("x", PNG)
    with pytest.raises(lmb.RefusedError):
        asyncio.run(openai_bot(provider).aedit("x", PNG))
    assert len(provider.calls("/images/edits")) == 2


@pytest.mark.wire
def test_gemini_edit_refusal_names_its_finish_reason(provider):
    """A Gemini edit answered with IMAGE_SAFETY and no image: RefusedError, not a generic NoImageError."""
    provider.json_route("/models/gemini-2.5-flash-image:generateContent", GEMINI_NO)
    with pytest.raises(lmb.RefusedError, match="IMAGE_SAFETY"):
        gemini_bot(provider).edit("x", PNG)


def refusing(provider):
    """OpenAI answering every prompt with an image, but a prompt containing "forbidden" with a refusal."""

    def answer(request: Request) -> Response:
        prompt = json.loads(request.get_data())["prompt"]
        if "forbidden" in prompt:
            return Response(json.dumps(OPENAI_NO), 400, content_type="application/json")
        body = {"created": 1, "data": [{"b64_json": b64(tagged(prompt.encode()))}]}
        return Response(json.dumps(body), 200, content_type="application/json")

    provider.route("/images/generations", answer)


@pytest.mark.wire
def test_a_batch_goes_on_and_a_resumed_run_does_not_ask_again(provider, tmp_path):
    """One refused prompt in a batch: the others are made; the re-run sends nothing for it (unless told to)."""
    refusing(provider)
    prompts = ["a fox", "something forbidden", "a cat"]
    results = openai_bot(provider).batch(prompts, save_dir=tmp_path / "out")
    assert isinstance(results[1], lmb.RefusedError) and results[0].is_file() and results[2].is_file()
    sent = len(provider.calls("/images/generations"))
    again = list(openai_bot(provider).iter_batch(prompts, save_dir=tmp_path / "out"))
    assert len(provider.calls("/images/generations")) == sent
    refused = next(result for result in again if result.index == 1)
    assert isinstance(refused.error, lmb.RefusedError) and refused.resumed and "retry_refused" in str(refused.error)
    openai_bot(provider).batch(prompts, save_dir=tmp_path / "out", retry_refused=True)
    assert [r.json["prompt"] for r in provider.calls("/images/generations")[sent:]] == ["something forbidden"]


@pytest.mark.wire
def test_the_history_records_refusals(provider):
    """A refused call is in the history with its reason, and `history --refused` lists only those."""
    refusing(provider)
    bot = openai_bot(provider, imagebot_history=True)
    bot("a fox")
    with pytest.raises(lmb.RefusedError):
        bot("something forbidden")
    rows = _history.recent(refused=True)
    assert [row["prompt"] for row in rows] == ["something forbidden"] and "safety system" in rows[0]["refused"]


@pytest.mark.wire
def test_the_command_prints_refused_and_exits_1(provider, capsys, monkeypatch):
    """The CLI: "refused: REASON" for that prompt, the others saved, exit status 1; history --refused lists it."""
    refusing(provider)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    status = main(["a fox", "something forbidden", "--api-base", provider.base, "-m", "gpt-image-2"])
    captured = capsys.readouterr()
    assert status == 1 and "refused: " in captured.err and "safety system" in captured.err
    assert captured.out.strip() == "a_fox.png"
    assert main(["history", "--refused"]) == 0
    assert "something forbidden" in capsys.readouterr().out


def test_a_refusal_pickles_as_itself():
    """A refusal travels back from a worker process as a RefusedError, fields and all."""
    import pickle

    error = lmb.RefusedError("no", provider="openai", model="gpt-image-2", stage="prompt", code="moderation_blocked")
    back = pickle.loads(pickle.dumps(error))
    assert isinstance(back, lmb.RefusedError) and (back.code, back.stage, back.provider) == (
        "moderation_blocked",
        "prompt",
        "openai",
    )


def test_a_failure_that_is_not_a_refusal_is_not_listed_as_refused(tmp_path):
    """An error that merely has a `reason` attribute (UnicodeEncodeError, ssl errors) is recorded as an error,
    not as a refusal."""
    from llamabot_imagebot._operations import Generate
    from llamabot_imagebot._settings import Settings
    from llamabot_imagebot._step import Generation, record

    history = tmp_path / "h.sqlite3"
    settings = Settings(model="gpt-image-2", size="1024x1024", n=1, timeout=600, imagebot_history=history)
    error = UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
    record(Generation(settings, Generate("A fox")), None, error)
    assert _history.recent(refused=True, path=history) == []
    assert "UnicodeEncodeError" in _history.recent(path=history)[0]["error"]
