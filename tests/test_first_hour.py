"""A new user's first errors: each is clear, fast, and says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import litellm
import pytest
from werkzeug import Response

import llamabot as lmb
from tests.fakes import PNG, b64


@pytest.mark.parametrize("prompt", ["'   '", "None", "'x' * 40000"])
def test_a_bad_prompt_is_refused_before_litellm_loads(prompt):
    """In a fresh process: a blank, None or too-long prompt fails at once (litellm is never imported)."""
    code = (
        "import sys, time\nstart = time.perf_counter()\nimport llamabot as lmb\n"
        "try:\n"
        f"    lmb.ImageBot(model='gpt-image-2')({prompt})\n"
        "except (ValueError, TypeError) as exc:\n"
        "    print(type(exc).__name__, round(time.perf_counter() - start, 3), 'litellm' in sys.modules)\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    kind, seconds, loaded = out.split()
    assert kind in ("ValueError", "TypeError") and loaded == "False"
    assert float(seconds) < 3.0  # well under a second idle; 3 x headroom on a loaded machine


def test_a_mistyped_model_names_the_nearest_and_imagebot_models(provider, capsys):
    """`gpt-imag-2`: UnknownModelError suggesting `gpt-image-2`, pointing to `imagebot models`; litellm prints nothing."""
    with pytest.raises(lmb.UnknownModelError, match=r"gpt-image-2.*imagebot models") as caught:
        lmb.ImageBot(model="gpt-imag-2", api_base=provider.base, api_key="sk-test")("A fox")
    assert isinstance(caught.value, ValueError) and provider.received == []
    captured = capsys.readouterr()
    assert "Provider List" not in captured.out + captured.err


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("gpt-image-2", "OPENAI_API_KEY"),
        ("recraft/recraftv3", "RECRAFT_API_KEY"),
        ("gemini/imagen-4.0-generate-001", "GEMINI_API_KEY"),
    ],
)
def test_a_missing_key_is_an_authentication_error_naming_the_variable(provider, model, variable):
    """No key anywhere: litellm.AuthenticationError naming the variable, and nothing sent."""
    with pytest.raises(litellm.AuthenticationError, match=variable):
        lmb.ImageBot(model=model, api_base=provider.base, num_retries=3)("A fox")
    assert provider.received == []


def test_a_wrong_api_base_is_named(provider):
    """A server without the image endpoint (501) and one answering HTML with 200: the note names the endpoint."""
    provider.route("/images/generations", lambda _r: Response("not here", 501))
    with pytest.raises(Exception) as caught:
        lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test", num_retries=0)("A fox")
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert provider.base in notes and "api_base" in notes


def test_a_failed_call_prints_nothing_to_stdout(provider, capsys):
    """litellm's "Give Feedback / Get Help" banner is switched off (litellm.suppress_debug_info)."""
    provider.json_route("/images/generations", {"error": {"message": "bad"}}, status=400)
    for _ in range(2):
        with pytest.raises(litellm.BadRequestError):
            lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test")("A fox")
    assert "Give Feedback" not in capsys.readouterr().out
    assert litellm.suppress_debug_info is True


def test_an_unpriced_answer_has_no_cost_rather_than_zero(provider):
    """A provider reporting no usage, for a model litellm has no price for: cost is None, not 0.0."""
    provider.json_route("/v1/images/generations", {"created": 1, "data": [{"b64_json": b64(PNG)}]})
    bot = lmb.ImageBot(
        model="recraft/some-new-model", custom_llm_provider="recraft", api_base=provider.base, api_key="k"
    )
    assert bot.generate("A fox").cost is None


def test_an_image_format_warning_points_at_the_callers_line(provider, monkeypatch):
    """A PNG saved as .jpg without Pillow's help: the ImageFormatWarning names this file, not ImageBot's."""
    import builtins

    real_import = builtins.__import__

    def no_pillow(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    provider.gpt_image([PNG])
    monkeypatch.setattr(builtins, "__import__", no_pillow)
    with pytest.warns(lmb.ImageFormatWarning) as caught:
        lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test")("A fox", save_path="fox.jpg")
    assert caught[0].filename == __file__


def test_a_saving_failure_says_where_the_image_is_in_good_english(provider, tmp_path):
    """One image that could not be written: "The generated image is on this exception"."""
    provider.gpt_image([PNG])
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    bot = lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test")
    with pytest.raises(lmb.ImageSaveError, match="The generated image is on this exception") as caught:
        bot("A fox", save_path=blocked / "f.png")
    assert caught.value.images[0].data == PNG


def test_a_repeated_batch_says_it_resumed(provider, capsys, monkeypatch, tmp_path):
    """The command run twice on one folder: the second says how many it resumed and how many it made."""
    from llamabot_imagebot.cli import main

    provider.gpt_image()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    args = ["a fox", "a cat", "--dir", str(tmp_path / "out"), "--api-base", provider.base, "--no-history"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["a cat", "a dog", *args[2:]]) == 0
    assert "resumed 1, made 1 of 2" in capsys.readouterr().err


def test_json_history_is_exact(provider, capsys):
    """(Kept exact for programs) `history --json` rows parse as JSON."""
    from llamabot_imagebot.cli import main

    provider.gpt_image()
    lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test", imagebot_history=True)("A fox")
    main(["history", "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["prompt"] == "A fox"
