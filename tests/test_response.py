"""The pure response module: formats, base64, data URIs, names. No network, no files."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litellm.types.utils import ImageObject, ImageResponse

from llamabot import InvalidImageError, NoImageError
from llamabot_imagebot._formats import DataURI, decode_base64, slugify, sniff_mime
from llamabot_imagebot._response import GeneratedImage, parse_response
from tests.fakes import GIF, JPEG, PNG, WEBP, b64

SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>'


@pytest.mark.parametrize(
    ("data", "mime"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp"), (GIF, "image/gif"), (SVG, "image/svg+xml")],
)
def test_format_is_read_from_the_bytes(data, mime):
    """Every supported format is recognised by its magic bytes."""
    assert sniff_mime(data[:1024]) == mime


@pytest.mark.parametrize(
    "data", [b"", b"<!DOCTYPE html><html>error</html>", b'{"error": "x"}', b"RIFF\x00\x00\x00\x00WAVE"]
)
def test_non_images_are_not_recognised(data):
    """HTML, JSON, empty and other RIFF content are not images."""
    assert sniff_mime(data) is None


def test_b64_result_has_real_mime_and_data_uri():
    """A JPEG sent as base64 is reported as JPEG and its data URI says so."""
    image = GeneratedImage(b64_json=b64(JPEG))
    assert image.mime_type == "image/jpeg" and image.extension == ".jpg"
    assert image.data == JPEG
    assert image.data_uri == f"data:image/jpeg;base64,{b64(JPEG)}"
    assert image.reference == image.data_uri


def test_b64_with_line_breaks_and_missing_padding_decodes():
    """Wrapped lines and dropped padding are tolerated."""
    text = base64.encodebytes(PNG).decode().rstrip("=\n")
    assert decode_base64(text) == PNG


def test_invalid_base64_raises_value_error():
    """Invalid base64 is a ValueError naming the problem."""
    with pytest.raises(ValueError, match="not valid base64"):
        GeneratedImage(b64_json="@@@not base64@@@").data


def test_base64_that_is_not_an_image_is_refused():
    """Valid base64 of an HTML page is not an image: the value cannot be made."""
    with pytest.raises(InvalidImageError, match="not an image"):
        GeneratedImage(b64_json=b64(b"<html><body>Internal error</body></html>"))


def test_data_uri_in_url_is_decoded_not_downloaded():
    """litellm's mock_response puts a data URI in ``url``: it is decoded, never fetched."""
    image = GeneratedImage(url=f"data:image/png;base64,{b64(PNG)}")
    assert not image.is_remote and image.url is None
    assert image.data == PNG and image.mime_type == "image/png"
    assert image.reference == f"data:image/png;base64,{b64(PNG)}"


def test_data_uri_must_carry_image_data():
    """A data URI holding text is refused: the value cannot be made."""
    with pytest.raises(InvalidImageError):
        GeneratedImage(url="data:text/plain;base64," + b64(b"hello there"))


def test_percent_encoded_svg_data_uri():
    """A non-base64 data URI is decoded too."""
    uri = DataURI.parse("data:image/svg+xml,%3Csvg%20xmlns%3D%22x%22%3E%3C%2Fsvg%3E")
    assert uri.decode() == b'<svg xmlns="x"></svg>'


def test_parse_response_keeps_every_image_revised_prompt_and_cost():
    """All images of the response come back in order, with revised prompts and the cost."""
    response = ImageResponse(
        data=[
            ImageObject(url="https://example.invalid/a.png", revised_prompt="A better cat"),
            ImageObject(b64_json=b64(JPEG)),
        ]
    )
    images = parse_response(response, prompt="A cat", model="gpt-image-2", cost=0.04)
    assert [i.url for i in images] == ["https://example.invalid/a.png", None]
    assert images[0].revised_prompt == "A better cat" and images[0].is_remote
    assert images[1].mime_type == "image/jpeg"
    assert images.cost == 0.04 and images.model == "gpt-image-2" and images.prompt == "A cat"


def test_parse_response_accepts_plain_dicts():
    """A response given as plain data (as a mocked litellm might return) works too."""
    images = parse_response({"data": [{"b64_json": b64(PNG)}]})
    assert images[0].data == PNG and images.cost is None


@pytest.mark.parametrize("data", [[], None, [{"url": None, "b64_json": None}], [{"url": ""}]])
def test_response_without_image_data_is_a_value_error(data):
    """No URL and no base64 anywhere is the reference's ValueError."""
    with pytest.raises(NoImageError) as caught:
        parse_response(ImageResponse(data=data) if data is not None else {"data": None})
    assert isinstance(caught.value, ValueError)


def test_repr_never_dumps_base64():
    """A result's repr stays short whatever the image size."""
    image = GeneratedImage(b64_json=b64(PNG * 500))
    assert len(repr(image)) < 200


@pytest.mark.parametrize(
    ("prompt", "stem"),
    [
        ("A painting of a sunset over mountains", "a_painting_of_a_sunset_over_mountains"),
        ("Café crème — déjà vu!", "cafe_creme_deja_vu"),
        ("../../etc/passwd", "etc_passwd"),
        ("/absolute/path", "absolute_path"),
        ("CON", "con_image"),
        ("日本の猫", "image"),
        ("...", "image"),
    ],
)
def test_slug_examples(prompt, stem):
    """Slugs are lowercase ASCII words joined by underscores."""
    assert slugify(prompt) == stem


def test_slug_is_bounded_at_a_word_boundary():
    """A 10,000-character prompt gives a short stem cut between words."""
    stem = slugify("word " * 2000)
    assert len(stem) <= 60 and stem.endswith("word") and "__" not in stem


RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


@given(st.text(max_size=400))
def test_any_prompt_gives_a_safe_single_file_name(prompt):
    """Whatever the prompt, the stem is non-empty, short, plain ASCII and no device name."""
    stem = slugify(prompt)
    assert 0 < len(stem) <= 60
    assert all(c.isascii() and (c.isalnum() or c == "_") for c in stem)
    assert not stem.startswith((".", "_")) and stem.lower() not in RESERVED
    assert slugify(prompt) == stem  # deterministic


def test_generated_image_is_an_immutable_value():
    """A GeneratedImage cannot be changed in place; replace() makes a changed copy."""
    image = GeneratedImage(b64_json=b64(PNG), revised_prompt="r")
    with pytest.raises(AttributeError, match="immutable"):
        image.path = Path("x.png")
    moved = image.replace(path=Path("x.png"))
    assert moved.path == Path("x.png") and image.path is None
    assert moved.data == image.data and moved.revised_prompt == "r" and moved != image
    assert GeneratedImage(b64_json=b64(PNG)) == GeneratedImage(url=f"data:image/png;base64,{b64(PNG)}")
