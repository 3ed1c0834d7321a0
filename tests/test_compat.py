"""ImageBot works on every litellm and openai release CI installs: the newest and the lowest supported.

Where litellm changed between those releases (1.110 dropped ``dall-e-2``/``dall-e-3`` from its
model table and removed its DALL-E image configs), these tests pin what users see; where
ImageBot must read litellm's internals, they prove the fallback when those internals are gone.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import litellm
import pytest
from litellm.types.utils import ImageObject, ImageResponse

import llamabot as lmb
from llamabot_imagebot import _retry, _routing, _transport
from tests.fakes import PNG, b64

SDK_RETRIES_OFF = {"max_retries": 0} if _transport.sdk_retries_switchable() else {}
OPENAI_MODELS = ["dall-e-3", "dall-e-2", "gpt-image-2", "gpt-image-2.5-flare", "gpt-image-2.6-sunburst"]


def quiet_bot(**kwargs) -> lmb.ImageBot:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmb.RetiredModelWarning)
        return lmb.ImageBot(**kwargs)


@pytest.mark.wire
@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_bare_openai_models_reach_images_generations(provider, model):
    """Every bare OpenAI image model is routed to api_base's /images/generations, with OpenAI's body."""
    provider.openai_images([PNG], as_url=False)
    quiet_bot(model=model, api_base=provider.base, api_key="sk-test", size="1024x1024").generate("A cat")
    (request,) = provider.calls("/images/generations")
    body = request.json
    assert body["model"] == model and body["prompt"] == "A cat" and body["size"] == "1024x1024"
    if model.startswith("dall-e"):
        assert body["response_format"] == "url"  # the documented default, refused by litellm 1.110's configs
    else:
        assert "response_format" not in body


@pytest.mark.wire
def test_default_bot_reaches_openai_through_the_environment(provider, monkeypatch):
    """ImageBot() with nothing but OPENAI_API_KEY and OPENAI_BASE_URL set sends the documented request."""
    provider.openai_images([PNG])
    # litellm caches the OpenAI client it builds from the environment for the whole process:
    # the same key as tests/test_reference_examples.py keeps the two from seeing each other's.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", provider.base)
    path = quiet_bot()("A futuristic cityscape at night")
    (request,) = provider.calls("/images/generations")
    assert request.json == {
        "model": "dall-e-3",
        "prompt": "A futuristic cityscape at night",
        "n": 1,
        "size": "1024x1024",
        "response_format": "url",
    }
    assert path.read_bytes() == PNG


@pytest.mark.wire
@pytest.mark.parametrize("model", ["dall-e-3", "dall-e-2"])
def test_retired_models_404_names_the_replacement(provider, model):
    """OpenAI's 404 for a retired model reaches the user as litellm's NotFoundError with the note."""
    error = {"message": f"The model `{model}` has been deprecated", "type": "invalid_request_error"}
    provider.json_route("/images/generations", {"error": {**error, "code": "model_not_found"}}, status=404)
    bot = quiet_bot(model=model, api_base=provider.base, api_key="sk-test", size="1024x1024")
    with pytest.raises(litellm.NotFoundError) as caught:
        bot("A cat")
    assert len(provider.calls("/images/generations")) == 1
    assert any("gpt-image-2" in note for note in caught.value.__notes__)


def test_a_refused_documented_parameter_moves_into_the_body(mocker):
    """When litellm refuses a parameter OpenAI documents for the model, the call is made again with it in extra_body."""
    answer = ImageResponse(data=[ImageObject(url="https://example.invalid/a.png")])
    refusal = litellm.UnsupportedParamsError(message="Setting `response_format` is not supported", model="dall-e-3")
    patched = mocker.patch("litellm.image_generation", side_effect=[refusal, answer])
    images = quiet_bot(style="vivid").generate("A cat")
    assert images[0].url == "https://example.invalid/a.png"
    first, second = (call.kwargs for call in patched.call_args_list)
    assert first == {
        "model": "dall-e-3",
        "prompt": "A cat",
        "size": "1024x1024",
        "n": 1,
        "response_format": "url",
        "timeout": 600,
        "style": "vivid",
        **SDK_RETRIES_OFF,
    }
    assert second == {
        "model": "dall-e-3",
        "prompt": "A cat",
        "timeout": 600,
        **SDK_RETRIES_OFF,
        "extra_body": {"n": 1, "size": "1024x1024", "response_format": "url", "style": "vivid"},
    }


def test_strict_mode_keeps_litellms_refusal(mocker):
    """drop_params=False asks for litellm's strict error: nothing is moved, the refusal is raised."""
    refusal = litellm.UnsupportedParamsError(message="Setting `response_format` is not supported", model="dall-e-3")
    patched = mocker.patch("litellm.image_generation", side_effect=refusal)
    with pytest.raises(litellm.UnsupportedParamsError):
        quiet_bot(drop_params=False)("A cat")
    assert patched.call_count == 1


def test_other_models_are_not_retried_on_refusal(mocker):
    """A refusal for a model OpenAI does not document (here Recraft) is raised as is."""
    refusal = litellm.UnsupportedParamsError(message="Setting `x` is not supported", model="recraftv3")
    patched = mocker.patch("litellm.image_generation", side_effect=refusal)
    with pytest.raises(litellm.UnsupportedParamsError):
        lmb.ImageBot(model="recraft/recraftv3")("A cat")
    assert patched.call_count == 1


@pytest.fixture
def fresh_lookups():
    """Forget cached parameter lookups and given warnings, before and after the test."""

    def reset():
        _routing.supported_params.cache_clear()
        _routing._warned.clear()

    reset()
    yield
    reset()


def test_parameter_lookup_falls_back_with_a_warning_when_litellm_changes(mocker, monkeypatch, fresh_lookups):
    """Without litellm's image configs, ImageBot uses its own table and says so once."""
    monkeypatch.delattr(litellm.ProviderConfigManager, "get_provider_image_generation_config")
    patched = mocker.patch(
        "litellm.image_generation", return_value=ImageResponse(data=[ImageObject(b64_json=b64(PNG))])
    )
    bot = lmb.ImageBot(model="recraft/recraftv3", quality="hd")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bot.generate("A cat")
        bot.generate("A dog")
    changed = [str(w.message) for w in caught if issubclass(w.category, lmb.DependencyChangedWarning)]
    assert len(changed) == 1 and "falls back" in changed[0]  # said once per process
    assert sum(issubclass(w.category, lmb.UnsupportedSettingWarning) for w in caught) == 2
    sent = patched.call_args.kwargs
    assert "quality" not in sent and sent["response_format"] == "url"  # Recraft: no quality, takes response_format


def test_cost_falls_back_to_litellms_public_pricing(mocker, fresh_lookups):
    """A litellm response without its hidden cost is priced with litellm.completion_cost, with a warning."""
    answer = ImageResponse(data=[ImageObject(b64_json=b64(PNG))])
    answer._hidden_params = None  # the shape a future litellm might have
    mocker.patch("litellm.image_generation", return_value=answer)
    pricing = mocker.patch("litellm.completion_cost", return_value=0.011)
    with pytest.warns(lmb.DependencyChangedWarning, match="completion_cost"):
        images = lmb.ImageBot(model="gpt-image-2").generate("A cat")
    assert images.cost == 0.011
    assert pricing.call_args.kwargs == {"completion_response": answer, "model": "gpt-image-2"}


def test_cost_is_read_from_litellms_response(mocker):
    """The cost litellm put on its response is the one reported, with no warning."""
    answer = ImageResponse(data=[ImageObject(b64_json=b64(PNG))])
    answer._hidden_params = {"response_cost": 0.04}
    mocker.patch("litellm.image_generation", return_value=answer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lmb.ImageBot(model="gpt-image-2").generate("A cat").cost == 0.04


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (litellm.RateLimitError("slow down", "openai", "gpt-image-2"), True),
        (litellm.InternalServerError("boom", "openai", "gpt-image-2"), True),
        (litellm.ServiceUnavailableError("busy", "bedrock", "nova"), True),
        (litellm.Timeout("too slow", "gpt-image-2", "openai"), True),
        (litellm.APIError(502, "bad gateway", "azure", "img"), True),
        (litellm.APIError(400, "bad", "azure", "img"), False),
        (litellm.InternalServerError("Missing credentials", "openai", "gpt-image-2"), False),
        (litellm.NotFoundError("gone", "dall-e-3", "openai"), False),
        (litellm.BadRequestError("bad", "gpt-image-2", "openai"), False),
        (litellm.ContentPolicyViolationError("no", "gpt-image-2", "openai"), False),
        (litellm.AuthenticationError("who", "openai", "gpt-image-2"), False),
        (ConnectionResetError("reset by peer"), True),
        (ValueError("a bug"), False),
    ],
)
def test_which_errors_are_retried(error, transient):
    """Retries follow litellm's exception classes: 429, 5xx, timeouts and network failures only."""

    assert _retry.is_transient(error) is transient


def test_pyproject_range_is_the_one_ci_tests():
    """pyproject's lower bounds are the versions pinned in ci/lowest.txt, with no upper cap."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).parent.parent
    pins = dict(
        line.split("==")
        for line in (root / "ci" / "lowest.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    requirements = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {}
    for requirement in requirements:
        name, _, bound = requirement.partition(">=")
        assert "<" not in bound and "!=" not in bound, requirement
        declared[name] = bound
    assert {name: pins[name] for name in declared} == declared
    assert "openai" in pins  # litellm's own lower bound on openai, pinned too
    dask_extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dask"]
    assert dask_extra == [f"dask[distributed]>={pins['dask']}"] and pins["distributed"] == pins["dask"]
