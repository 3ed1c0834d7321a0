"""Every example of the API reference runs as written, with provider keys set in the environment.

The examples are copied verbatim from ``shared/spec/imagebot-api-reference.txt``; the
environment points the providers' clients at the local fake server instead of the internet.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import litellm
import pytest

import llamabot as lmb
from tests.fakes import PNG

EXAMPLES = {
    "jupyter_and_script": """
        import llamabot as lmb

        bot = lmb.ImageBot()

        # In a Jupyter notebook (returns URL)
        url = bot("A painting of a sunset over mountains", return_url=True)

        # In a Python script (saves to file)
        image_path = bot("A painting of a sunset over mountains")
        print(image_path)  # Path object
    """,
    "basic": """
        import llamabot as lmb

        bot = lmb.ImageBot()
        image_path = bot("A futuristic cityscape at night")
    """,
    "custom_size_and_quality": """
        import llamabot as lmb

        bot = lmb.ImageBot(
            model="dall-e-3",
            size="1792x1024",
            quality="hd",
        )

        image_path = bot("A detailed landscape painting")
    """,
    "in_jupyter": """
        import llamabot as lmb

        bot = lmb.ImageBot()

        # Returns URL for display in notebook
        url = bot("A beautiful sunset", return_url=True)
        # Image automatically displays in notebook
    """,
    "save_to_specific_path": """
        import llamabot as lmb
        from pathlib import Path

        bot = lmb.ImageBot()

        image_path = bot(
            "A painting of a dog",
            save_path=Path("output/dog_painting.png")
        )
    """,
    "dalle2": """
        import llamabot as lmb

        bot = lmb.ImageBot(
            model="dall-e-2",
            size="512x512",
            n=3  # Can generate multiple images with DALL-E 2
        )

        image_paths = [bot("A cat wearing sunglasses") for _ in range(3)]
    """,
}


@pytest.fixture
def openai_env(provider, monkeypatch):
    """OPENAI_API_KEY set, and the OpenAI client's base URL pointed at the fake server."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", provider.base)
    return provider


def run(source: str) -> dict:
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmb.RetiredModelWarning)  # the documented default is retired
        exec(compile(textwrap.dedent(source), "<reference example>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_reference_example_runs_as_written(openai_env, name):
    """The example runs unchanged and its results are real: a URL, or images on disk."""
    n_images = 3 if name == "dalle2" else 1
    openai_env.openai_images([PNG] * n_images)
    namespace = run(EXAMPLES[name])
    requests = openai_env.calls("/images/generations")
    assert requests and all(r.headers["Authorization"] == "Bearer sk-from-env" for r in requests)
    if "url" in namespace:
        assert namespace["url"].startswith(openai_env.base + "/files/")
    if "image_path" in namespace:
        assert isinstance(namespace["image_path"], Path) and namespace["image_path"].read_bytes() == PNG
    if name == "save_to_specific_path":
        assert namespace["image_path"] == Path("output/dog_painting.png")
    if name == "custom_size_and_quality":
        assert requests[0].json["size"] == "1792x1024" and requests[0].json["quality"] == "hd"
    if name == "dalle2":
        assert [r.json["n"] for r in requests] == [3, 3, 3]
        assert len(namespace["image_paths"]) == 3
        assert len(list(Path.cwd().glob("a_cat_wearing_sunglasses*.png"))) == 9  # every image paid for is kept


def test_openrouter_example_runs_as_written(provider, monkeypatch):
    """The provider-specific options example, with OPENROUTER_API_KEY exported."""
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-from-env")
    monkeypatch.setattr(litellm, "api_base", provider.base)  # litellm's global base URL: the fake server
    provider.openrouter()
    source = """
        import llamabot as lmb

        bot = lmb.ImageBot(
            model="openrouter/google/gemini-2.5-flash-image",
            quality="high",
            user="user-123",
        )

        image_path = bot("A watercolor red panda reading a book")
    """
    with pytest.warns(lmb.UnsupportedSettingWarning):
        namespace = run(source)
    (request,) = provider.calls("/chat/completions")
    assert request.headers["Authorization"] == "Bearer or-from-env"
    assert namespace["image_path"].read_bytes() == PNG
