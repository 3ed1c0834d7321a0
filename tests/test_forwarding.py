"""What ImageBot forwards to ``litellm.image_generation``, patched at that public boundary."""

from __future__ import annotations

import inspect
import warnings

import litellm
import pytest
from litellm.types.utils import ImageObject, ImageResponse

import llamabot as lmb
from llamabot.bot.imagebot import ImageBot
from llamabot_imagebot import _transport
from tests.fakes import PNG, b64

#: What ImageBot adds on the OpenAI SDK path where litellm passes it on (1.109 and later):
#: every retry is ImageBot's own, so num_retries means what it says (documented in docs/llamabot.md).
SDK_RETRIES_OFF = {"max_retries": 0} if _transport.sdk_retries_switchable() else {}


def response(*items: dict) -> ImageResponse:
    return ImageResponse(data=[ImageObject(**item) for item in items] or [ImageObject(b64_json=b64(PNG))])


@pytest.fixture
def image_generation(mocker):
    """``litellm.image_generation`` replaced at the boundary, answering one PNG."""
    return mocker.patch("litellm.image_generation", return_value=response())


def quiet_bot(**kwargs) -> ImageBot:
    """An ImageBot built without the retired-model warning getting in the way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmb.RetiredModelWarning)
        return lmb.ImageBot(**kwargs)


def test_constructor_signature_matches_reference():
    """The constructor's parameters and defaults are exactly the reference's."""
    params = inspect.signature(ImageBot.__init__).parameters
    defaults = {name: p.default for name, p in params.items() if name != "self"}
    assert defaults == {
        "model": "dall-e-3",
        "size": "1024x1024",
        "quality": None,
        "n": 1,
        "response_format": "url",
        "api_key": None,
        "api_base": None,
        "api_version": None,
        "timeout": 600,
        "image_generation_kwargs": inspect.Parameter.empty,
    }
    assert params["image_generation_kwargs"].kind is inspect.Parameter.VAR_KEYWORD
    call = inspect.signature(ImageBot.__call__).parameters
    assert [(n, p.default) for n, p in call.items()][1:] == [
        ("prompt", inspect.Parameter.empty),
        ("return_url", False),
        ("save_path", None),
    ]


def test_attributes_keep_settings_and_extra_kwargs():
    """Every documented attribute holds what was passed; unknown kwargs land in image_generation_kwargs."""
    bot = ImageBot(
        model="gpt-image-2",
        size="1536x1024",
        quality="high",
        n=2,
        response_format="b64_json",
        api_key="k-123456",
        api_base="http://x",
        api_version="v1",
        timeout=30,
        user="u1",
        background="transparent",
    )
    assert (bot.model, bot.size, bot.quality, bot.n, bot.response_format) == (
        "gpt-image-2",
        "1536x1024",
        "high",
        2,
        "b64_json",
    )
    assert (bot.api_key, bot.api_base, bot.api_version, bot.timeout) == ("k-123456", "http://x", "v1", 30)
    assert bot.image_generation_kwargs == {"user": "u1", "background": "transparent"}


def test_default_call_is_exactly_the_documented_one(image_generation):
    """With all defaults the call is model, prompt, size, n, response_format and timeout, nothing else.

    The one addition, on a litellm that passes it to the OpenAI SDK, is ``max_retries=0``.
    """
    quiet_bot()("A futuristic cityscape at night")
    image_generation.assert_called_once_with(
        model="dall-e-3",
        prompt="A futuristic cityscape at night",
        size="1024x1024",
        n=1,
        response_format="url",
        timeout=600,
        **SDK_RETRIES_OFF,
    )


def test_optional_settings_are_sent_when_given(image_generation):
    """quality, api_key, api_base, api_version and extra kwargs are forwarded as given."""
    bot = ImageBot(
        model="dall-e-3", quality="hd", api_key="sk-abcdef", api_base="http://b", api_version="2024", style="vivid"
    )
    bot("A detailed landscape painting")
    image_generation.assert_called_once_with(
        model="dall-e-3",
        prompt="A detailed landscape painting",
        size="1024x1024",
        n=1,
        response_format="url",
        timeout=600,
        quality="hd",
        api_key="sk-abcdef",
        api_base="http://b",
        api_version="2024",
        style="vivid",
        **SDK_RETRIES_OFF,
    )


def test_litellm_is_looked_up_at_call_time(mocker):
    """A patch applied after the bot was built still intercepts the call."""
    bot = quiet_bot()
    patched = mocker.patch("litellm.image_generation", return_value=response())
    bot("A cat", return_url=True)
    assert patched.call_count == 1


def test_gpt_image_gets_no_default_response_format_and_no_warning(image_generation, recwarn):
    """A documented default the model refuses is left out silently."""
    ImageBot(model="gpt-image-2")("A fox")
    kwargs = image_generation.call_args.kwargs
    assert "response_format" not in kwargs
    assert kwargs["size"] == "1024x1024" and kwargs["n"] == 1
    assert not [w for w in recwarn if issubclass(w.category, lmb.UnsupportedSettingWarning)]


def test_explicit_unsupported_setting_is_dropped_with_a_warning(image_generation):
    """An explicit setting the model refuses is dropped, and the warning names it and the model."""
    bot = ImageBot(model="gpt-image-2", response_format="b64_json", style="vivid")
    with pytest.warns(lmb.UnsupportedSettingWarning) as caught:
        bot("A fox")
    message = str(caught[0].message)
    assert "response_format" in message and "style" in message and "gpt-image-2" in message
    kwargs = image_generation.call_args.kwargs
    assert "response_format" not in kwargs and "style" not in kwargs


def test_openrouter_reference_example_drops_user_keeps_quality(image_generation):
    """The reference's OpenRouter example: quality is sent, user is dropped with a warning."""
    bot = ImageBot(model="openrouter/google/gemini-2.5-flash-image", quality="high", user="user-123")
    with pytest.warns(lmb.UnsupportedSettingWarning, match="user"):
        bot("A watercolor red panda reading a book")
    kwargs = image_generation.call_args.kwargs
    assert kwargs["quality"] == "high"
    assert "user" not in kwargs and "response_format" not in kwargs


def test_drop_params_false_restores_strict_forwarding(image_generation, recwarn):
    """drop_params=False forwards every setting untouched so that litellm can refuse it."""
    ImageBot(model="gpt-image-2", drop_params=False)("A fox")
    kwargs = image_generation.call_args.kwargs
    assert kwargs["response_format"] == "url" and kwargs["drop_params"] is False
    assert not [w for w in recwarn if issubclass(w.category, lmb.UnsupportedSettingWarning)]


def test_drop_params_false_gives_litellms_own_error():
    """With drop_params=False the real litellm refuses response_format for gpt-image-2, before any HTTP."""
    bot = ImageBot(model="gpt-image-2", api_key="sk-test", api_base="http://127.0.0.1:9", drop_params=False)
    with pytest.raises(litellm.UnsupportedParamsError, match="response_format"):
        bot("A fox")


@pytest.mark.parametrize(
    ("model", "extra", "absent"),
    [
        ("bedrock/stability.sd3-large-v1:0", {}, {"size", "n", "response_format"}),
        ("vertex_ai/imagen-3.0-generate-002", {}, {"response_format"}),
        ("azure/gpt-image-deployment", {}, {"response_format"}),
        ("recraft/recraftv3", {}, set()),
    ],
)
def test_defaults_are_left_out_where_the_model_refuses_them(image_generation, model, extra, absent):
    """Each provider receives only the defaults it accepts."""
    ImageBot(model=model, **extra)("A fox")
    kwargs = image_generation.call_args.kwargs
    assert absent.isdisjoint(kwargs)
    assert kwargs["timeout"] == 600


def test_azure_base_model_dalle3_keeps_response_format(image_generation):
    """base_model='dall-e-3' gives an Azure deployment dall-e-3 rules."""
    ImageBot(model="azure/images-prod", base_model="dall-e-3", api_version="2024-02-01")("A fox")
    assert image_generation.call_args.kwargs["response_format"] == "url"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n": 0}, ValueError),
        ({"n": -2}, ValueError),
        ({"n": 1.5}, TypeError),
        ({"size": "big"}, ValueError),
        ({"size": "1024*1024"}, ValueError),
        ({"response_format": "png"}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"timeout": "600"}, TypeError),
        ({"model": ""}, ValueError),
        ({"model": "dall-e-3", "n": 2}, ValueError),
        ({"model": "dall-e-2", "n": 11}, ValueError),
    ],
)
def test_bad_settings_raise_before_any_call(image_generation, kwargs, error):
    """Settings no provider accepts are refused at construction."""
    with pytest.raises(error), warnings.catch_warnings():
        warnings.simplefilter("ignore", lmb.RetiredModelWarning)
        ImageBot(**{"model": "gpt-image-2", **kwargs})
    image_generation.assert_not_called()


def test_settings_changed_after_construction_are_checked_at_call_time(image_generation):
    """Attributes are validated again on each call."""
    bot = ImageBot(model="gpt-image-2")
    bot.n = 0
    with pytest.raises(ValueError, match="n must be at least 1"):
        bot("A fox")
    image_generation.assert_not_called()


@pytest.mark.parametrize(
    ("prompt", "error"), [("", ValueError), ("   \n", ValueError), (None, TypeError), (42, TypeError)]
)
def test_bad_prompts_raise_before_any_call(image_generation, prompt, error):
    """A blank or non-string prompt never reaches the provider."""
    with pytest.raises(error):
        ImageBot(model="gpt-image-2")(prompt)
    image_generation.assert_not_called()


def test_response_without_images_raises_value_error(mocker):
    """An empty data list is the reference's ValueError."""
    mocker.patch("litellm.image_generation", return_value=ImageResponse(data=[]))
    with pytest.raises(ValueError, match="No images found in response"):
        ImageBot(model="gpt-image-2")("A fox")
    assert list((__import__("pathlib").Path.cwd()).iterdir()) == []


def test_default_bot_builds_and_calls_under_warnings_as_errors(tmp_path):
    """A suite run with -W error can build ImageBot() and call it with litellm.image_generation patched."""
    import subprocess
    import sys

    script = (
        "import base64, unittest.mock as mock\n"
        "from litellm.types.utils import ImageObject, ImageResponse\n"
        "import llamabot as lmb\n"
        f"png = base64.b64decode({b64(PNG)!r})\n"
        "answer = ImageResponse(data=[ImageObject(b64_json=base64.b64encode(png).decode())])\n"
        "with mock.patch('litellm.image_generation', return_value=answer) as patched:\n"
        "    path = lmb.ImageBot()('A cat')\n"
        "assert patched.call_args.kwargs['model'] == 'dall-e-3'\n"
        "assert path.read_bytes() == png, path\n"
        "print('ok')\n"
    )
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "ok"


def test_exceptions_share_one_root_and_keep_their_builtin_bases():
    """ImageBot's own exceptions derive from ImageBotError and from ValueError or OSError."""
    assert issubclass(lmb.NoImageError, lmb.ImageBotError) and issubclass(lmb.NoImageError, ValueError)
    assert issubclass(lmb.InvalidImageError, lmb.ImageBotError) and issubclass(lmb.InvalidImageError, ValueError)
    assert issubclass(lmb.ImageDownloadError, lmb.ImageBotError) and issubclass(lmb.ImageDownloadError, OSError)
    assert not issubclass(litellm.APIError, lmb.ImageBotError)


def test_current_model_raises_no_retirement_warning(recwarn):
    """gpt-image-2 is not flagged."""
    ImageBot(model="gpt-image-2")
    assert not recwarn.list


def test_model_not_found_for_dalle3_gets_a_note(mocker):
    """OpenAI's model_not_found for dall-e-3 keeps litellm's type and names the current models from litellm's table."""
    error = litellm.NotFoundError(
        message="OpenAIException - The model `dall-e-3` has been deprecated (model_not_found)",
        model="dall-e-3",
        llm_provider="openai",
    )
    mocker.patch("litellm.image_generation", side_effect=error)
    with pytest.raises(litellm.NotFoundError) as caught:
        quiet_bot()("A cat")
    assert any("gpt-image-2" in note for note in caught.value.__notes__)


def test_api_key_never_in_repr_or_error_text(mocker):
    """The key is masked in repr and scrubbed from a provider error's text."""
    key = "sk-canary-0123456789abcdef"
    bot = ImageBot(model="gpt-image-2", api_key=key, aws_secret_access_key="aws-canary-secret-99")
    assert key not in repr(bot) and key not in str(bot)
    assert "aws-canary-secret-99" not in repr(bot)
    error = litellm.AuthenticationError(
        message=f"Incorrect API key provided: {key}", llm_provider="openai", model="gpt-image-2"
    )
    mocker.patch("litellm.image_generation", side_effect=error)
    with pytest.raises(litellm.AuthenticationError) as caught:
        bot("A fox")
    text = str(caught.value) + repr(caught.value.args) + "".join(getattr(caught.value, "__notes__", []))
    assert key not in text
    assert "OPENAI_API_KEY" in text  # the note says where the key goes


def test_generate_takes_per_call_overrides(image_generation):
    """generate(prompt, n=2, size=...) changes this call only; the bot keeps its settings."""
    bot = ImageBot(model="gpt-image-2", quality="low")
    bot.generate("A fox", n=2, size="1536x1024", background="transparent")
    sent = image_generation.call_args.kwargs
    assert (sent["n"], sent["size"], sent["background"], sent["quality"]) == (2, "1536x1024", "transparent", "low")
    assert (bot.n, bot.size, bot.image_generation_kwargs) == (1, "1024x1024", {})
    bot.batch(["A cat"], return_url=True, quality="high")
    assert image_generation.call_args.kwargs["quality"] == "high" and bot.quality == "low"
    with pytest.raises(ValueError, match="n must be at least 1"):
        bot.generate("A fox", n=0)


def test_repr_leaves_out_what_the_model_is_never_sent():
    """gpt-image-2 is never sent response_format, so its repr does not show one; dall-e-3's does."""
    assert "response_format" not in repr(ImageBot(model="gpt-image-2"))
    assert "response_format='url'" in repr(quiet_bot(model="dall-e-3"))


def test_a_misspelled_setting_is_named_and_still_sent(mocker):
    """`qualty="high"`: a warning naming `quality`; the provider still gets what was written (it may know it)."""
    patched = mocker.patch(
        "litellm.image_generation", return_value=ImageResponse(data=[ImageObject(b64_json=b64(PNG))])
    )
    with pytest.warns(lmb.UnsupportedSettingWarning, match=r"'qualty'.*did you mean 'quality'") as caught:
        lmb.ImageBot(model="gpt-image-2", qualty="high", colour="red").generate("A fox")
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert patched.call_args.kwargs["qualty"] == "high" and patched.call_args.kwargs["colour"] == "red"
