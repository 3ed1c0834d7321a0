"""llamabot's own seams: tests written against llamabot's ImageBot patch these module-level steps.

Each step is looked up in ``llamabot.bot.imagebot`` at call time, so a patch there takes effect.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

import llamabot as lmb
from llamabot.bot import imagebot
from tests.fakes import JPEG, PNG, b64

STEPS = {
    "image_generation_kwargs_for_bot": ["bot", "prompt"],
    "generate_image_response": ["bot", "prompt"],
    "first_generated_image": ["response"],
    "generated_image_reference": ["image"],
    "generated_image_bytes": ["image"],
    "is_running_in_jupyter": [],
}


def image_response(url: str | None = None, b64_json: str | None = None) -> SimpleNamespace:
    """A minimal litellm-shaped image response, as llamabot's own tests build it."""
    return SimpleNamespace(data=[SimpleNamespace(url=url, b64_json=b64_json)])


@pytest.mark.parametrize(("name", "positional"), STEPS.items())
def test_steps_have_llamabots_names_and_signatures(name, positional):
    """Every step is a module-level function whose positional parameters are llamabot's."""
    parameters = inspect.signature(getattr(imagebot, name)).parameters.values()
    assert [p.name for p in parameters if p.default is inspect.Parameter.empty] == positional


def test_patched_jupyter_check_displays_and_returns_the_reference(mocker):
    """is_running_in_jupyter patched to True: each image is displayed once through IPython."""
    mocker.patch("llamabot.bot.imagebot.is_running_in_jupyter", return_value=True)
    display = mocker.patch("IPython.display.display")
    mocker.patch("litellm.image_generation", return_value=image_response(url="http://image.url"))
    result = lmb.ImageBot()("test prompt", return_url=True)
    assert result == "http://image.url"
    (shown,), _ = display.call_args
    assert shown.url == "http://image.url"


def test_patched_jupyter_check_false_displays_nothing(mocker):
    """is_running_in_jupyter patched to False: nothing is displayed, the reference is a plain str."""
    mocker.patch("llamabot.bot.imagebot.is_running_in_jupyter", return_value=False)
    display = mocker.patch("IPython.display.display")
    mocker.patch("litellm.image_generation", return_value=image_response(url="http://image.url"))
    result = lmb.ImageBot()("test prompt", return_url=True)
    assert type(result) is str and result == "http://image.url"
    display.assert_not_called()


def test_patched_response_skips_litellm_and_is_saved(mocker, tmp_path):
    """generate_image_response patched: litellm is never called; the answer is saved as given."""
    litellm_call = mocker.patch("litellm.image_generation")
    mocker.patch("llamabot.bot.imagebot.generate_image_response", return_value=image_response(b64_json=b64(PNG)))
    path = lmb.ImageBot()("test prompt", save_path=tmp_path / "out.png")
    assert path == tmp_path / "out.png" and path.read_bytes() == PNG
    litellm_call.assert_not_called()


def test_patched_kwargs_are_what_litellm_receives(mocker):
    """image_generation_kwargs_for_bot patched: its kwargs are exactly what reaches litellm."""
    mocker.patch(
        "llamabot.bot.imagebot.image_generation_kwargs_for_bot",
        return_value={"model": "gpt-image-2", "prompt": "rewritten"},
    )
    litellm_call = mocker.patch("litellm.image_generation", return_value=image_response(b64_json=b64(PNG)))
    lmb.ImageBot().generate("test prompt")
    litellm_call.assert_called_once_with(model="gpt-image-2", prompt="rewritten")


def test_patched_first_image_failure_propagates(mocker):
    """first_generated_image patched to raise: the call raises that error."""
    mocker.patch("litellm.image_generation", return_value=image_response(b64_json=b64(PNG)))
    mocker.patch(
        "llamabot.bot.imagebot.first_generated_image",
        side_effect=ValueError("No images found in response! Please try again."),
    )
    with pytest.raises(ValueError, match="No images found in response"):
        lmb.ImageBot()("test prompt", return_url=True)
    assert list(Path.cwd().iterdir()) == []


def test_patched_reference_is_returned(mocker):
    """generated_image_reference patched: return_url=True returns what it returns."""
    mocker.patch("litellm.image_generation", return_value=image_response(b64_json=b64(PNG)))
    mocker.patch("llamabot.bot.imagebot.generated_image_reference", return_value="data:image/png;base64,xyz")
    assert lmb.ImageBot()("test prompt", return_url=True) == "data:image/png;base64,xyz"


def test_no_images_is_the_references_value_error(mocker):
    """A response with no image raises ValueError saying "No images found in response"."""
    mocker.patch("litellm.image_generation", return_value=SimpleNamespace(data=[]))
    with pytest.raises(ValueError, match="No images found in response"):
        lmb.ImageBot()("test prompt", return_url=True)


def test_steps_work_on_litellm_shaped_objects(provider):
    """The steps accept litellm's own image objects: references with real MIME types, bytes decoded or fetched."""
    url = provider.file("seam.jpg", JPEG, content_type="image/jpeg")
    assert imagebot.generated_image_reference(SimpleNamespace(url=url, b64_json=None)) == url
    jpeg_b64 = SimpleNamespace(url=None, b64_json=b64(JPEG))
    assert imagebot.generated_image_reference(jpeg_b64).startswith("data:image/jpeg;base64,")
    assert imagebot.generated_image_bytes(jpeg_b64) == JPEG
    assert imagebot.generated_image_bytes(SimpleNamespace(url=url, b64_json=None)) == JPEG
    first = imagebot.first_generated_image(image_response(b64_json=b64(PNG)))
    assert imagebot.generated_image_bytes(first) == PNG
    with pytest.raises(ValueError, match="No images found in response"):
        imagebot.first_generated_image(SimpleNamespace(data=[]))
    assert imagebot.is_running_in_jupyter() is False
