"""Today's models: lifecycles come from litellm's model table, the defaults are current, typos are free.

Entries are added to litellm's table through its public ``register_model`` (as a user or
a newer litellm would), never by editing ``litellm.model_cost`` directly.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import warnings

import litellm
import pytest

import llamabot as lmb
from llamabot_imagebot import _models, _prices, _routing
from llamabot_imagebot._settings import Settings
from llamabot_imagebot.cli import DEFAULT_MODEL, main
from tests.fakes import BY_OUTPUT_FORMAT, IMAGE_TOKENS, PNG, same_pixels

TODAY = datetime.datetime.now(datetime.timezone.utc).date()


def register(name: str, **facts) -> None:
    """A model entry in litellm's table, through its public register_model."""
    entry = {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image_token": 3e-05, **facts}
    litellm.register_model({name: entry})


def bot_for(provider, model: str, **kwargs) -> lmb.ImageBot:
    return lmb.ImageBot(model=model, api_base=provider.base, api_key="sk-test", **kwargs)


# Lifecycles -----------------------------------------------------------------------------


@pytest.mark.wire
def test_a_shut_down_model_warns_once_before_its_first_request_naming_the_successor(provider):
    register("gpt-image-0-test", deprecation_date="2020-01-02", successor_model="gpt-image-2")
    provider.gpt_image()
    bot = bot_for(provider, "gpt-image-0-test")
    with pytest.warns(lmb.RetiredModelWarning) as caught:
        bot.generate("A cat")
    text = str(caught[0].message)
    assert "2020-01-02" in text and "ImageBot(model='gpt-image-2')" in text
    assert len(provider.calls("/images/generations")) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per model per process
        bot.generate("A dog")


def test_the_warning_comes_before_any_request(mocker):
    """The call that would be the request is never reached before the warning is out."""
    register("gpt-image-0-early", deprecation_date="2021-03-04", successor_model="gpt-image-2")
    order = []

    def request(**kwargs):
        order.append("request")
        raise RuntimeError("stop here")

    mocker.patch("litellm.image_generation", side_effect=request)
    with warnings.catch_warnings():
        warnings.simplefilter("always", lmb.RetiredModelWarning)
        # Only the lifecycle warning counts (an old litellm also warns of the SDK's own retries).
        warnings.showwarning = lambda message, category, *args, **kwargs: (
            order.append("warning") if category is lmb.RetiredModelWarning else None
        )
        with pytest.raises(RuntimeError):
            lmb.ImageBot(model="gpt-image-0-early", num_retries=0)("A cat")
    assert order == ["warning", "request"]


def test_a_model_shutting_down_within_30_days_warns_that_it_is_about_to(mocker):
    soon = (TODAY + datetime.timedelta(days=10)).isoformat()
    register("gpt-image-0-soon", deprecation_date=soon, successor_model="gpt-image-2")
    mocker.patch("litellm.image_generation", side_effect=RuntimeError("stop here"))
    with (
        pytest.warns(lmb.RetiredModelWarning, match=f"shuts down on {soon} \\(in 10 days"),
        pytest.raises(RuntimeError),
    ):
        lmb.ImageBot(model="gpt-image-0-soon", num_retries=0).generate("A cat")


def test_a_date_far_ahead_and_a_current_model_warn_of_nothing(mocker):
    register("gpt-image-0-later", deprecation_date=(TODAY + datetime.timedelta(days=300)).isoformat())
    mocker.patch("litellm.image_generation", side_effect=RuntimeError("stop"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in ("gpt-image-0-later", "gpt-image-2"):
            with pytest.raises(RuntimeError):
                lmb.ImageBot(model=model, num_retries=0)("A cat")


def test_building_and_calling_the_default_bot_warns_of_nothing_under_w_error(mocker):
    """llamabot's own suite: ImageBot() with a mocked litellm, run with -W error."""
    answer = litellm.ImageResponse(data=[litellm.ImageObject(url="https://example.invalid/a.png")])
    mocker.patch("litellm.image_generation", return_value=answer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bot = lmb.ImageBot()
        assert bot.model == "dall-e-3"
        assert bot("A cat", return_url=True) == "https://example.invalid/a.png"


def test_a_successor_that_is_itself_shut_down_is_followed_to_a_live_one():
    table = {
        "a": {"deprecation_date": "2020-01-01", "successor_model": "b"},
        "b": {"deprecation_date": "2021-01-01", "successor_model": "c"},
        "c": {},
    }
    found = _models.lifecycle("a", table["a"], TODAY)
    assert found.status == "retired" and _models.live_successor(table, found.successor, TODAY) == "c"
    assert "ImageBot(model='c')" in _models.warning_text(found, table, TODAY)


@pytest.mark.wire
def test_the_404_names_the_successor_from_the_table(provider):
    register("gpt-image-0-gone", deprecation_date="2020-05-06", successor_model="gpt-image-2.6-flare")
    error = {"message": "The model `gpt-image-0-gone` does not exist", "type": "invalid_request_error"}
    provider.json_route("/images/generations", {"error": {**error, "code": "model_not_found"}}, status=404)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmb.RetiredModelWarning)
        with pytest.raises(litellm.NotFoundError) as caught:
            bot_for(provider, "gpt-image-0-gone")("A cat")
    notes = " ".join(caught.value.__notes__)
    assert "2020-05-06" in notes and "gpt-image-2.6-flare" in notes


def test_the_dalle_404_note_lists_current_models_from_the_table():
    note = _routing.not_found_note("dall-e-3")
    assert "2026-05-12" in note
    listed = note.split("table: ")[1].rstrip(".").split(", ")
    for model in listed:
        assert _models.lifecycle(model, litellm.model_cost[model], TODAY).status != "retired"
    assert "gpt-image-2" in listed


# The defaults ----------------------------------------------------------------------------


def test_the_command_line_default_is_a_current_model():
    assert _models.lifecycle(DEFAULT_MODEL, litellm.model_cost.get(DEFAULT_MODEL), TODAY).status == "current"
    assert DEFAULT_MODEL in litellm.model_cost  # litellm routes and prices it


def test_imagebot_model_sets_the_model_when_none_is_passed(monkeypatch):
    monkeypatch.setenv("IMAGEBOT_MODEL", "gpt-image-2")
    bot = lmb.ImageBot()
    assert bot.model == "gpt-image-2" and "model='gpt-image-2'" in repr(bot)
    assert lmb.ImageBot(model="openrouter/google/gemini-2.5-flash-image").model.startswith("openrouter/")


@pytest.mark.wire
def test_imagebot_model_is_what_the_command_sends(provider, monkeypatch):
    provider.gpt_image()
    monkeypatch.setenv("IMAGEBOT_MODEL", "gpt-image-2.5-flare")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(["A fox", "--api-base", provider.base, "--no-history", "--url"]) == 0
    assert provider.calls("/images/generations")[0].json["model"] == "gpt-image-2.5-flare"


@pytest.mark.wire
def test_the_command_sends_gpt_image_2_by_default(provider, monkeypatch):
    provider.gpt_image()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(["A fox", "--api-base", provider.base, "--no-history"]) == 0
    assert provider.calls("/images/generations")[0].json["model"] == "gpt-image-2"


# imagebot models ---------------------------------------------------------------------------


def test_models_lists_status_pricing_and_edits_grouped_by_provider(capsys):
    register("gpt-image-0-listed", deprecation_date="2020-01-02", successor_model="gpt-image-2")
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "openai:" in out and "azure:" in out
    assert out.index("azure:") < out.index("openai:")  # grouped, providers in order
    line = next(line for line in out if line.split() and line.split()[0] == "gpt-image-0-listed")
    assert "shut down on 2020-01-02 → gpt-image-2" in line and "per image token" in line
    current = next(line for line in out if line.split() and line.split()[0] == "gpt-image-2")
    assert "current" in current and current.split()[-1] == "yes"  # gpt-image-2 lists /v1/images/edits


def test_models_filters_by_provider_and_prints_json_lines(capsys):
    assert main(["models", "openai", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and {row["provider"] for row in rows} == {"openai"}
    by_name = {row["model"]: row for row in rows}
    assert by_name["gpt-image-2"]["status"] == "current" and by_name["gpt-image-2"]["edits"] is True
    assert by_name["gpt-image-2"]["pricing"] == "per image token"
    assert set(by_name["gpt-image-2"]) == {
        "model",
        "provider",
        "status",
        "deprecation_date",
        "successor_model",
        "pricing",
        "edits",
    }
    assert main(["models", "no-such-provider"]) == 1
    assert "no image model of provider" in capsys.readouterr().err


def test_catalog_folds_price_entries_into_their_model():
    table = {
        "azure/high/1024-x-1024/gpt-x": {
            "mode": "image_generation",
            "litellm_provider": "azure",
            "input_cost_per_pixel": 1e-7,
        },
        "azure/low/1024-x-1024/gpt-x": {
            "mode": "image_generation",
            "litellm_provider": "azure",
            "input_cost_per_pixel": 1e-8,
        },
        "recraft/v3": {"mode": "image_generation", "litellm_provider": "recraft", "output_cost_per_image": 0.04},
        "edit-only": {"mode": "image_edit", "litellm_provider": "x"},
        "chatty": {"mode": "chat", "litellm_provider": "openai"},
    }
    rows = {row.model: row for row in _models.catalog(table, TODAY)}
    assert set(rows) == {"azure/gpt-x", "recraft/v3", "edit-only"}
    assert rows["azure/gpt-x"].pricing == "per pixel" and rows["recraft/v3"].pricing == "per image"
    assert rows["edit-only"].edits and rows["edit-only"].pricing == "unpriced"


# A typo is never a paid request --------------------------------------------------------------


@pytest.mark.wire
@pytest.mark.parametrize(("word", "meant"), [("histroy", "history"), ("modles", "models"), ("cots", "cost")])
def test_a_mistyped_command_is_refused_and_sends_nothing(provider, capsys, monkeypatch, word, meant):
    provider.gpt_image()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main([word, "--api-base", provider.base, "--no-history"]) == 2
    assert f"did you mean `imagebot {meant}`" in capsys.readouterr().err
    assert provider.received == []


@pytest.mark.wire
@pytest.mark.parametrize(
    "argv", [["generate", "histroy", "{options}"], ["{options}", "--", "histroy"], ["A histroy of foxes", "{options}"]]
)
def test_an_explicit_prompt_that_looks_like_a_command_is_sent(provider, monkeypatch, argv):
    provider.gpt_image()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    options = ["--api-base", provider.base, "--no-history"]
    argv = [part for word in argv for part in (options if word == "{options}" else [word])]
    assert main(argv) == 0
    assert provider.calls("/images/generations")[0].json["prompt"] in ("histroy", "A histroy of foxes")


# The spending cap for models priced per image token ------------------------------------------


def test_gpt_image_2_has_an_estimate_from_documented_tokens():
    entry = litellm.model_cost["gpt-image-2"]
    low = _models.token_price_per_image(entry, "1024x1024", "low")
    assert low == pytest.approx(272 * entry["output_cost_per_image_token"])

    def price(size, quality):
        return _prices.price_per_image(Settings(model="gpt-image-2", size=size, quality=quality, n=1, timeout=600))

    high = price("1024x1024", None)  # no quality: the dearest
    assert high == pytest.approx(4160 * entry["output_cost_per_image_token"])
    assert price("2048x2048", "high") == pytest.approx(4 * high)
    assert price("auto", "medium") == pytest.approx(1584 * entry["output_cost_per_image_token"])


@pytest.mark.wire
def test_max_cost_below_one_gpt_image_2_image_sends_nothing(provider):
    provider.gpt_image()
    results = bot_for(provider, "gpt-image-2").batch(["a", "b"], return_url=True, max_cost=0.05)  # high: ~$0.125
    assert all(isinstance(result, lmb.NotSentError) for result in results)
    assert provider.received == []


@pytest.mark.wire
def test_the_cap_holds_from_the_first_prompt_for_the_command_line_default(provider):
    """Several go at once from the start (no lone first prompt), and the cap is never crossed."""
    provider.gpt_image()
    provider.latency = 1.0  # the three overlap even on a loaded machine
    environment = {**os.environ, "OPENAI_API_KEY": "sk-test", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    environment.pop("IMAGEBOT_MODEL", None)
    prompts = [f"p{i}" for i in range(8)]
    command = [sys.executable, "-m", "llamabot", *prompts, "--quality", "low", "--max-cost", "0.03", "--json"]
    command += ["--concurrency", "4", "--no-history", "--api-base", provider.base]
    run = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    made = [line for line in lines if "path" in line]
    per_image = 10 * 5e-06 + IMAGE_TOKENS * 3e-05  # what litellm prices each answer at
    assert len(made) == 3 and len(provider.calls("/images/generations")) == 3  # 3 x $0.0082 <= $0.03 < 4 x
    assert sum(line["cost"] for line in made) == pytest.approx(3 * per_image)
    assert provider.max_in_flight == 3  # sent together: the estimate was known before the first answer


# Fixtures answer like today's GPT image models -----------------------------------------------


@pytest.mark.wire
@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "gif", "svg"])
def test_every_output_format_of_a_gpt_image_model_saves_with_its_extension(provider, fmt):
    provider.gpt_image()
    path = bot_for(provider, "gpt-image-2", output_format=fmt)("A red fox")
    extension = {"jpeg": ".jpg"}.get(fmt, f".{fmt}")
    assert path.suffix == extension
    body = provider.calls("/images/generations")[0].json
    assert body["output_format"] == fmt and "response_format" not in body
    saved = path.read_bytes()
    if fmt == "svg":
        assert saved == BY_OUTPUT_FORMAT["svg"]
    else:
        assert same_pixels(saved, BY_OUTPUT_FORMAT[fmt])


@pytest.mark.wire
def test_a_gpt_image_answer_has_no_revised_prompt_and_is_priced_from_its_tokens(provider):
    provider.gpt_image([PNG, PNG])
    images = bot_for(provider, "gpt-image-2", n=2).generate("A cat")
    assert [image.revised_prompt for image in images] == [None, None]
    assert images.cost == pytest.approx(10 * 5e-06 + 2 * IMAGE_TOKENS * 3e-05)
