"""Image edits: every kind of input reaches each provider byte for byte, through the same step as generation.

Each wire test lets the real litellm send the edit to a local server impersonating the provider
and checks, on the server side, the bytes of every input and the mask.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from werkzeug import Request, Response

import llamabot as lmb
from llamabot_imagebot import _history
from tests.fakes import JPEG, PNG, WEBP, b64, tagged

MASK = tagged(b"mask")
FIRST, SECOND = tagged(b"first input"), tagged(b"second input")
EDITED = tagged(b"edited")


def openai_edits(provider, path: str = "/images/edits") -> None:
    """OpenAI's /images/edits: multipart, several image[] and a mask; answers base64."""

    def answer(request: Request) -> Response:
        n = int(request.form.get("n", 1))
        output = 272 * n
        usage = {
            "input_tokens": 10,
            "input_tokens_details": {"text_tokens": 5, "image_tokens": 5},
            "output_tokens": output,
            "output_tokens_details": {"text_tokens": 0, "image_tokens": output},
            "total_tokens": 10 + output,
        }
        payload = {"created": 1, "data": [{"b64_json": b64(EDITED)}] * n, "usage": usage}
        return Response(json.dumps(payload), 200, content_type="application/json")

    provider.route(path, answer)


def uploaded(request_body: bytes, content_type: str) -> dict[str, list[bytes]]:
    """The files of a multipart body, by field name."""
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(request_body)),
        "wsgi.input": io.BytesIO(request_body),
    }
    request = Request(environ)
    return {name: [file.read() for file in request.files.getlist(name)] for name in request.files}


@pytest.mark.wire
def test_openai_edit_sends_several_images_and_a_mask_byte_for_byte(provider, tmp_path, bot):
    """Two images (a str path and a Path) and a mask: image[] twice and mask, each file's bytes intact."""
    openai_edits(provider)
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    first.write_bytes(FIRST)
    second.write_bytes(SECOND)
    images = bot().edit("Make it blue", [str(first), second], mask=MASK, input_fidelity="high")
    (request,) = provider.calls("/images/edits")
    files = uploaded(request.body, request.headers["Content-Type"])
    assert files["image[]"] == [FIRST, SECOND] and files["mask"] == [MASK]
    fields = request.body.decode("latin-1")
    assert 'name="input_fidelity"' in fields and 'name="drop_params"' not in fields
    assert images[0].data == EDITED and images.cost is not None


@pytest.mark.wire
def test_every_kind_of_input_is_read(provider, tmp_path, bot):
    """bytes, a binary file, a GeneratedImage and one known only by URL (fetched safely) all arrive as themselves."""
    openai_edits(provider)
    url = provider.file("made.png", SECOND)
    made_by_url = lmb.GeneratedImage(url=url)
    with io.BytesIO(JPEG) as file:
        bot().edit("x", [FIRST, file, lmb.GeneratedImage(b64_json=b64(WEBP)), made_by_url])
    (request,) = provider.calls("/images/edits")
    assert uploaded(request.body, request.headers["Content-Type"])["image[]"] == [FIRST, JPEG, WEBP, SECOND]


@pytest.mark.wire
def test_azure_edit_goes_to_the_deployment(provider):
    """Azure: /openai/deployments/{dep}/images/edits?api-version=…, the image and mask intact."""
    openai_edits(provider, "/openai/deployments/edit-prod/images/edits")
    bot = lmb.ImageBot(model="azure/edit-prod", api_base=provider.base, api_key="k", api_version="2025-04-01-preview")
    bot.edit("Make it blue", FIRST, mask=MASK)
    (request,) = provider.calls("/images/edits")
    assert request.query["api-version"] == "2025-04-01-preview"
    files = uploaded(request.body, request.headers["Content-Type"])
    assert files["image[]"] == [FIRST] and files["mask"] == [MASK]


def gemini_answer(image: bytes = EDITED) -> dict:
    return {"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": b64(image)}}]}}]}


@pytest.mark.wire
def test_gemini_edit_sends_each_image_inline(provider):
    """Gemini image models: every input an inlineData part (base64 of its bytes), the prompt a text part."""
    provider.json_route("/models/gemini-2.5-flash-image:generateContent", gemini_answer())
    bot = lmb.ImageBot(model="gemini/gemini-2.5-flash-image", api_base=provider.base, api_key="k")
    images = bot.edit("Put them side by side", [FIRST, SECOND])
    (request,) = provider.calls(":generateContent")
    parts = request.json["contents"][0]["parts"]
    inline = [base64.b64decode(part["inlineData"]["data"]) for part in parts if "inlineData" in part]
    assert inline == [FIRST, SECOND] and any(part.get("text") == "Put them side by side" for part in parts)
    assert images[0].data == EDITED


@pytest.mark.wire
def test_vertex_imagen_edit_sends_the_image_and_mask_as_references(provider):
    """Imagen's capability model: a RAW reference image and a MASK reference, bytes intact."""
    path = "/v1/projects/p/locations/us-central1/publishers/google/models/imagen-3.0-capability-001:predict"
    provider.json_route(path, {"predictions": [{"bytesBase64Encoded": b64(EDITED), "mimeType": "image/png"}]})
    bot = lmb.ImageBot(
        model="vertex_ai/imagen-3.0-capability-001",
        api_base=provider.base,
        vertex_project="p",
        vertex_location="us-central1",
        api_key="k",
    )
    images = bot.edit("Make it blue", FIRST, mask=MASK)
    (request,) = provider.calls(":predict")
    references = request.json["instances"][0]["referenceImages"]
    by_type = {
        ref["referenceType"]: base64.b64decode(ref["referenceImage"]["bytesBase64Encoded"]) for ref in references
    }
    assert by_type["REFERENCE_TYPE_RAW"] == FIRST and by_type["REFERENCE_TYPE_MASK"] == MASK
    assert images[0].data == EDITED


@pytest.mark.wire
def test_vertex_gemini_edit_sends_the_image_inline(provider):
    """Vertex's Gemini image models: api_base is the full URL; the image an inlineData part."""
    provider.json_route("/vertex-gemini", gemini_answer())
    bot = lmb.ImageBot(
        model="vertex_ai/gemini-2.5-flash-image",
        api_base=f"{provider.base}/vertex-gemini",
        vertex_project="p",
        vertex_location="us-central1",
        api_key="k",
    )
    images = bot.edit("Make it blue", FIRST)
    (request,) = provider.calls("/vertex-gemini")
    parts = request.json["contents"]["parts"]
    assert [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p] == [FIRST]
    assert images[0].data == EDITED


@pytest.mark.wire
def test_recraft_edit_sends_one_image(provider):
    """Recraft: /v1/images/imageToImage, one image, multipart."""
    provider.json_route("/v1/images/imageToImage", {"created": 1, "data": [{"b64_json": b64(EDITED)}]})
    bot = lmb.ImageBot(model="recraft/recraftv3", api_base=provider.base, api_key="k")
    images = bot.edit("Make it blue", FIRST)
    (request,) = provider.calls("/imageToImage")
    assert uploaded(request.body, request.headers["Content-Type"])["image"] == [FIRST]
    assert images[0].data == EDITED


def test_recraft_takes_one_image_and_no_mask(provider):
    """Recraft edits one image, without a mask: two images, or a mask, are refused before anything is sent."""
    bot = lmb.ImageBot(model="recraft/recraftv3", api_base=provider.base, api_key="k")
    with pytest.raises(ValueError, match="at most 1 image"):
        bot.edit("x", [FIRST, SECOND])
    with pytest.raises(ValueError, match="no mask.*openai"):
        bot.edit("x", FIRST, mask=MASK)
    assert provider.received == []


@pytest.mark.wire
def test_bedrock_nova_canvas_inpaints_with_the_mask(provider):
    """Nova Canvas: a mask makes an INPAINTING task carrying both images."""
    provider.bedrock("amazon.nova-canvas-v1:0", [EDITED])
    bot = lmb.ImageBot(
        model="bedrock/amazon.nova-canvas-v1:0", api_base=provider.base, api_key="k", aws_region_name="us-east-1"
    )
    images = bot.edit("Make it blue", FIRST, mask=MASK)
    (request,) = provider.calls("/invoke")
    body = request.json
    assert body["taskType"] == "INPAINTING"
    params = body["inPaintingParams"]
    assert base64.b64decode(params["image"]) == FIRST and base64.b64decode(params["maskImage"]) == MASK
    assert images[0].data == EDITED


def test_a_provider_litellm_cannot_edit_with_is_named_before_sending(provider):
    """xAI: litellm cannot edit there; the error says so and lists the providers that can; nothing is sent."""
    bot = lmb.ImageBot(model="xai/grok-2-image", api_base=provider.base, api_key="k")
    with pytest.raises(ValueError, match=r"cannot edit images with xai.*openai, azure") as caught:
        bot.edit("x", FIRST)
    assert "nothing was sent" in str(caught.value) and provider.received == []


def test_inputs_are_checked_before_anything_is_sent(provider, tmp_path):
    """A missing file, a file that is not an image, one over the provider's limit, a text file object: clear errors."""
    bot = lmb.ImageBot(model="recraft/recraftv3", api_base=provider.base, api_key="k")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bot.edit("x", tmp_path / "missing.png")
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    with pytest.raises(lmb.InvalidImageError, match="not an image"):
        bot.edit("x", notes)
    with pytest.raises(ValueError, match="at most 5,242,880 bytes"):
        bot.edit("x", PNG + b"\0" * (5 * 1024 * 1024))
    with open(notes) as text, pytest.raises(TypeError, match="binary mode"):
        bot.edit("x", text)
    with pytest.raises(ValueError, match="at least one image"):
        bot.edit("x", [])
    assert provider.received == []


@pytest.mark.wire
def test_a_retried_edit_sends_its_inputs_whole_again(provider, bot):
    """A 503 then success: the second request carries the same bytes (the uploads are read afresh)."""
    answers = iter([Response("busy", 503, headers={"Retry-After": "0"})])

    def answer(request: Request) -> Response:
        try:
            return next(answers)
        except StopIteration:
            return Response(json.dumps({"created": 1, "data": [{"b64_json": b64(EDITED)}]}), 200)

    provider.route("/images/edits", answer)
    bot().edit("x", FIRST, mask=MASK)
    first, second = provider.calls("/images/edits")
    for request in (first, second):
        files = uploaded(request.body, request.headers["Content-Type"])
        assert files["image[]"] == [FIRST] and files["mask"] == [MASK]


@pytest.mark.wire
def test_an_edits_record_names_its_inputs_and_a_chain_can_be_followed(provider, tmp_path, bot):
    """Generate, edit twice: each record names its inputs' SHA-256, and the history walks back to the prompt."""
    provider.gpt_image([tagged(b"original")])
    openai_edits(provider)
    bot = bot(imagebot_history=True, imagebot_metadata=True)
    original = bot("A red fox", save_path=tmp_path / "fox.png")
    (first_edit,) = [r.paths[0] for r in bot.iter_edits([("Make it blue", original)], save_dir=tmp_path / "e1")]
    info = lmb.image_info(first_edit)
    assert info is not None and info["settings"]["inputs"] == [_sha(original)]
    chain = _history.chain(first_edit)
    assert [row["prompt"] for row in chain] == ["Make it blue", "A red fox"]


@pytest.mark.wire
def test_a_batch_of_edits_resumes(provider, tmp_path, bot):
    """A batch of edits with save_dir: a re-run sends nothing for the items already made."""
    openai_edits(provider)
    items = [("Make it blue", FIRST), ("Make it red", FIRST), ("Make it blue", SECOND)]
    first = list(bot().iter_edits(items, save_dir=tmp_path / "out"))
    assert len(provider.calls("/images/edits")) == 3 and [r.error for r in first if not r.ok] == []
    again = list(bot().iter_edits(items, save_dir=tmp_path / "out"))
    assert len(provider.calls("/images/edits")) == 3 and all(result.resumed for result in again)
    assert sorted(r.paths[0] for r in again) == sorted(r.paths[0] for r in first)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
