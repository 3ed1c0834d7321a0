"""A real litellm talks to a local server impersonating each provider.

These tests pin what litellm (1.106.2 and 1.110.2, both ends CI tests) really sends and returns; when a
new litellm release changes a provider's wire shape, they are the ones that fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import litellm
import pytest

import llamabot as lmb
from tests.fakes import JPEG, PNG, WEBP, b64

pytestmark = pytest.mark.wire

SCHEMA = json.loads((Path(__file__).parent / "data" / "openai-create-image-request.schema.json").read_text())["schema"]


def assert_valid_openai_body(body: dict) -> None:
    """The body validates against OpenAI's published CreateImageRequest schema."""
    jsonschema.validate(body, SCHEMA)


def test_dalle3_url_is_downloaded_and_saved(provider):
    """dall-e-3 with defaults: one schema-valid request, one download, the image on disk."""
    provider.openai_images([PNG])
    bot = lmb.ImageBot(api_base=provider.base, api_key="sk-test")
    path = bot("A painting of a sunset over mountains")
    (request,) = provider.calls("/images/generations")
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.json == {
        "model": "dall-e-3",
        "prompt": "A painting of a sunset over mountains",
        "n": 1,
        "size": "1024x1024",
        "response_format": "url",
    }
    assert_valid_openai_body(request.json)
    assert len(provider.calls("/files/")) == 1
    assert path.read_bytes() == PNG and path.suffix == ".png"


def test_dalle3_b64_is_decoded_and_saved(provider):
    """dall-e-3 with b64_json: nothing is downloaded; the bytes are written as sent."""
    provider.openai_images([JPEG])
    bot = lmb.ImageBot(api_base=provider.base, api_key="sk-test", response_format="b64_json", quality="hd")
    path = bot("A detailed landscape painting", save_path=Path("landscape.jpg"))
    (request,) = provider.calls("/images/generations")
    assert request.json["response_format"] == "b64_json" and request.json["quality"] == "hd"
    assert_valid_openai_body(request.json)
    assert provider.calls("/files/") == []
    assert path.read_bytes() == JPEG


def test_dalle3_revised_prompt_is_kept(provider):
    """generate() keeps OpenAI's revised prompt on each result."""
    provider.openai_images([PNG])
    images = lmb.ImageBot(api_base=provider.base, api_key="sk-test").generate("A cat")
    assert images[0].revised_prompt == "revised: A cat"


def test_gpt_image_1_with_defaults_reaches_the_server(provider):
    """gpt-image-2: no response_format is sent, the base64 answer is saved, the cost is reported."""
    provider.gpt_image([PNG, WEBP])
    bot = lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test", n=2, quality="low")
    images = bot.generate("A red fox in the snow")
    (request,) = provider.calls("/images/generations")
    assert request.json == {
        "model": "gpt-image-2",
        "prompt": "A red fox in the snow",
        "n": 2,
        "size": "1024x1024",
        "quality": "low",
    }
    assert_valid_openai_body(request.json)
    assert [i.mime_type for i in images] == ["image/png", "image/webp"]
    assert images.cost is not None and images.cost > 0


def test_gpt_image_options_pass_through(provider):
    """Provider options such as background and output_format reach the server untouched."""
    provider.gpt_image([PNG])
    bot = lmb.ImageBot(
        model="gpt-image-2", api_base=provider.base, api_key="sk-test", background="transparent", output_format="png"
    )
    bot("A logo", return_url=True)
    body = provider.calls("/images/generations")[0].json
    assert body["background"] == "transparent" and body["output_format"] == "png"
    assert_valid_openai_body(body)


def test_azure_gpt_image_deployment(provider):
    """An Azure gpt-image deployment: deployment path, api-version, api-key header, no response_format."""
    provider.gpt_image([PNG], path="/openai/deployments/img-prod/images/generations")
    bot = lmb.ImageBot(
        model="azure/img-prod", api_base=provider.base, api_version="2025-04-01-preview", api_key="az-key"
    )
    path = bot("A fox")
    (request,) = provider.calls("/openai/deployments/img-prod/")
    assert request.query == {"api-version": "2025-04-01-preview"}
    assert request.headers["Api-Key"] == "az-key"
    assert "response_format" not in request.json and "model" not in request.json
    assert path.read_bytes() == PNG


def test_azure_dalle3_deployment(provider):
    """An Azure dall-e-3 deployment gets response_format=url and its URL is downloaded."""
    provider.openai_images([PNG], path="/openai/deployments/dalle3/images/generations")
    bot = lmb.ImageBot(model="azure/dalle3", api_base=provider.base, api_version="2024-02-01", api_key="az-key")
    path = bot("A fox")
    assert provider.calls("/openai/deployments/dalle3/")[0].json["response_format"] == "url"
    assert path.read_bytes() == PNG


def test_openrouter_reference_example(provider):
    """The reference's OpenRouter example: chat completions, quality mapped, user dropped, JPEG kept as JPEG."""
    provider.openrouter([(JPEG, "image/jpeg")])
    bot = lmb.ImageBot(
        model="openrouter/google/gemini-2.5-flash-image",
        quality="high",
        user="user-123",
        api_base=provider.base,
        api_key="or-key",
    )
    with pytest.warns(lmb.UnsupportedSettingWarning, match="user"):
        image_path = bot("A watercolor red panda reading a book")
    (request,) = provider.calls("/chat/completions")
    body = request.json
    assert body["messages"] == [{"role": "user", "content": "A watercolor red panda reading a book"}]
    assert body["image_config"] == {"image_size": "4K", "aspect_ratio": "1:1"}
    assert "user" not in body and "response_format" not in body
    # litellm strips the data URI's MIME type; the real format is read from the bytes.
    assert image_path.suffix == ".jpg" and image_path.read_bytes() == JPEG


def test_openrouter_return_url_gives_a_jpeg_data_uri(provider):
    """The data URI handed back carries the image's real MIME type."""
    provider.openrouter([(JPEG, "image/jpeg")])
    bot = lmb.ImageBot(model="openrouter/google/gemini-2.5-flash-image", api_base=provider.base, api_key="or-key")
    assert bot("A panda", return_url=True) == f"data:image/jpeg;base64,{b64(JPEG)}"


def test_recraft(provider):
    """Recraft: /v1/images/generations, URL answer downloaded."""
    provider.openai_images([PNG], path="/v1/images/generations")
    path = lmb.ImageBot(model="recraft/recraftv3", api_base=provider.base, api_key="rc-key")("A fox")
    (request,) = provider.calls("/v1/images/generations")
    assert request.json["model"] == "recraftv3" and request.headers["Authorization"] == "Bearer rc-key"
    assert path.read_bytes() == PNG


def test_vertex_imagen(provider):
    """Vertex Imagen: api_base is the full URL; sampleCount and aspectRatio are sent; base64 saved."""
    provider.vertex_imagen("/v1/projects/p/locations/us-central1/publishers/google/models/imagen:predict")
    url = f"{provider.base}/v1/projects/p/locations/us-central1/publishers/google/models/imagen:predict"
    bot = lmb.ImageBot(model="vertex_ai/imagen-3.0-generate-002", api_base=url, api_key="vx-token")
    path = bot("A fox")
    (request,) = provider.calls(":predict")
    assert request.json["instances"] == [{"prompt": "A fox"}]
    assert request.json["parameters"]["sampleCount"] == 1 and request.json["parameters"]["aspectRatio"] == "1:1"
    assert path.read_bytes() == PNG


def test_bedrock_nova_canvas(provider):
    """Bedrock Nova Canvas: /model/{id}/invoke with size and n mapped, base64 saved."""
    provider.bedrock("amazon.nova-canvas-v1:0")
    bot = lmb.ImageBot(
        model="bedrock/amazon.nova-canvas-v1:0", api_base=provider.base, api_key="br-key", aws_region_name="us-east-1"
    )
    path = bot("A fox")
    (request,) = provider.calls("/invoke")
    config = request.json["imageGenerationConfig"]
    assert (config["width"], config["height"], config["numberOfImages"]) == (1024, 1024, 1)
    assert path.read_bytes() == PNG


def test_retired_dalle3_404_says_what_to_use(provider):
    """OpenAI's real 404 model_not_found keeps litellm's type and gains the replacement note."""
    provider.json_route(
        "/images/generations",
        {
            "error": {
                "message": "The model `dall-e-3` has been deprecated",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
        },
        status=404,
    )
    bot = lmb.ImageBot(api_base=provider.base, api_key="sk-test")
    with pytest.raises(litellm.NotFoundError) as caught:
        bot("A cat")
    assert any("gpt-image-2" in note for note in caught.value.__notes__)
    assert list(Path.cwd().iterdir()) == []


def test_provider_error_text_never_holds_the_key(provider):
    """A 401 that echoes the key comes back with the key scrubbed and a hint where keys go."""
    key = "sk-canary-wire-0123456789"
    provider.json_route(
        "/images/generations",
        {
            "error": {
                "message": f"Incorrect API key provided: {key}",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
        status=401,
    )
    bot = lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key=key)
    with pytest.raises(litellm.AuthenticationError) as caught:
        bot("A cat")
    text = str(caught.value) + repr(caught.value.args) + "\n".join(caught.value.__notes__)
    assert key not in text and "OPENAI_API_KEY" in text


def test_mock_response_data_uri_is_decoded_not_downloaded():
    """litellm's mock_response returns a data URI in url: it is saved without any HTTP."""
    bot = lmb.ImageBot(model="gpt-image-2", mock_response=f"data:image/png;base64,{b64(PNG)}")
    path = bot("A cat")
    assert path.read_bytes() == PNG and path.name == "a_cat.png"
