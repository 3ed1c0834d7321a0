"""Provenance in saved files, and the generation history."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys

import pytest
from PIL import Image

import llamabot as lmb
from llamabot_imagebot import _history
from llamabot_imagebot._provenance import embed, extract
from llamabot_imagebot.cli import main
from tests.fakes import GIF, JPEG, PNG, WEBP, b64, make_image, same_pixels

KEY = "sk-canary-provenance-0123456789"


def webp(**options) -> bytes:
    buffer = io.BytesIO()
    mode = "RGBA" if options.pop("alpha", False) else "RGB"
    Image.new(mode, (9, 7), (10, 200, 30, 128)[: len(mode)]).save(buffer, format="WEBP", **options)
    return buffer.getvalue()


def noise(fmt: str, **options) -> bytes:
    """An image larger than the head that embedding reads: the rest is copied, not parsed."""
    buffer = io.BytesIO()
    side = 200
    Image.frombytes("RGB", (side, side), random.Random(0).randbytes(side * side * 3)).save(
        buffer, format=fmt, **options
    )
    return buffer.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
FORMATS = {
    "png": PNG,
    "jpeg": JPEG,
    "webp-lossy": WEBP,
    "webp-lossless": webp(lossless=True),
    "webp-alpha": webp(alpha=True),
    "png-large": noise("PNG", compress_level=0),
    "webp-large": noise("WEBP", lossless=True),
    "gif": GIF,
    "svg": SVG,
}


def bot_for(provider, **kwargs) -> lmb.ImageBot:
    return lmb.ImageBot(**{"model": "gpt-image-2", "api_base": provider.base, "api_key": KEY, **kwargs})


@pytest.mark.parametrize("name", list(FORMATS))
def test_round_trip_every_format(provider, name):
    """Saved with provenance, read back with image_info; the pixels are the provider's; no secret inside."""
    original = FORMATS[name]
    provider.gpt_image([original])
    bot = bot_for(provider, imagebot_metadata=True, quality="low", background="auto")
    path = bot("A red fox in the snow")
    info = lmb.image_info(path)
    assert info["prompt"] == "A red fox in the snow" and info["model"] == "gpt-image-2"
    assert info["settings"]["quality"] == "low" and info["settings"]["background"] == "auto"
    assert info["generator"].startswith("llamabot-imagebot ") and info["created"].startswith("20")
    written = path.read_bytes() + (path.with_name(path.name + ".json").read_bytes() if name in ("gif", "svg") else b"")
    assert KEY.encode() not in written and "api_key" not in json.dumps(info)
    if name == "svg":
        assert path.read_bytes() == original
    else:
        assert same_pixels(path.read_bytes(), original)
        with Image.open(path) as img:
            img.verify()  # a standard decoder accepts the file (chunk CRCs, segment lengths)
    if name.startswith(("png", "jpeg", "webp")):
        assert not path.with_name(path.name + ".json").exists()  # embedded, not a sidecar
    if name.startswith("webp"):
        data = path.read_bytes()
        assert int.from_bytes(data[4:8], "little") == len(data) - 8  # the RIFF size counts the whole file


def test_png_carries_a_parameters_text_chunk(provider):
    """The PNG gets the well-known `parameters` tEXt chunk that image tools display."""
    provider.gpt_image([PNG])
    path = bot_for(provider, imagebot_metadata=True)("A lighthouse at dusk")
    with Image.open(path) as img:
        assert img.text["parameters"].startswith("A lighthouse at dusk\nModel: gpt-image-2")
        assert json.loads(img.text["imagebot"])["prompt"] == "A lighthouse at dusk"


def test_png_image_data_is_byte_for_byte_unchanged():
    """Only chunks are added: removing them gives back the provider's exact bytes."""
    embedded = embed(PNG, "image/png", {"prompt": "x", "model": "m"})
    assert embedded != PNG and extract(embedded)["prompt"] == "x"
    chunks, position = [], 8
    while position < len(embedded):
        length = int.from_bytes(embedded[position : position + 4], "big")
        chunks.append(embedded[position : position + 12 + length])
        position += 12 + length
    kept = b"".join(c for c in chunks if c[4:8] not in (b"tEXt", b"iTXt"))
    assert embedded[:8] + kept == PNG


def test_library_writes_the_providers_bytes_by_default(provider):
    """Without asking, a drop-in user gets exactly what the provider sent."""
    provider.gpt_image([PNG])
    path = bot_for(provider)("A fox")
    assert path.read_bytes() == PNG and lmb.image_info(path) is None


def test_environment_variable_turns_metadata_on(provider, monkeypatch):
    """IMAGEBOT_METADATA=1 enables provenance for bots that did not choose."""
    monkeypatch.setenv("IMAGEBOT_METADATA", "1")
    provider.gpt_image([PNG])
    assert lmb.image_info(bot_for(provider)("A fox"))["prompt"] == "A fox"
    assert lmb.image_info(bot_for(provider, imagebot_metadata=False)("A fox")) is None


def test_own_options_are_not_forwarded_to_litellm(mocker):
    """imagebot_metadata and imagebot_history never reach litellm."""
    from litellm.types.utils import ImageObject, ImageResponse

    patched = mocker.patch(
        "litellm.image_generation", return_value=ImageResponse(data=[ImageObject(b64_json=b64(PNG))])
    )
    bot = lmb.ImageBot(model="gpt-image-2", imagebot_metadata=True, imagebot_history=False)
    bot("A fox")
    assert "imagebot_metadata" not in patched.call_args.kwargs and "imagebot_history" not in patched.call_args.kwargs
    assert bot.image_generation_kwargs == {}


def test_history_records_successes_and_failures(provider):
    """With imagebot_history=True each generation is a row: prompt, model, outputs, cost, duration, error."""
    provider.gpt_image([PNG, PNG])
    bot = bot_for(provider, imagebot_history=True, n=2)
    first = bot("A red fox")
    provider.server.clear()
    provider.json_route(
        "/images/generations", {"error": {"message": "nope", "type": "invalid_request_error"}}, status=400
    )
    with pytest.raises(Exception, match="nope"):
        bot("A blue fox")
    failed, done = _history.recent()
    assert done["prompt"] == "A red fox" and done["model"] == "gpt-image-2" and done["provider"] == "openai"
    assert done["outputs"] == [str(first.resolve()), str(first.with_name("a_red_fox_2.png").resolve())]
    assert done["n_images"] == 2 and done["cost"] > 0 and done["duration"] >= 0 and done["error"] is None
    assert failed["prompt"] == "A blue fox" and "nope" in failed["error"] and failed["n_images"] == 0
    assert KEY not in json.dumps([failed, done])


def test_history_is_off_by_default_for_the_library(provider):
    """A drop-in user's calls leave no history."""
    provider.gpt_image([PNG])
    bot_for(provider)("A fox")
    assert _history.recent() == []


def test_history_failure_is_a_warning_not_an_error(provider, tmp_path, monkeypatch):
    """An unwritable history warns; the image is still made and returned."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("IMAGEBOT_HISTORY_DB", str(blocker / "history.sqlite3"))
    provider.gpt_image([PNG])
    with pytest.warns(lmb.HistoryWarning):
        path = bot_for(provider, imagebot_history=True)("A fox")
    assert path.read_bytes() == PNG


def test_concurrent_processes_lose_no_row(tmp_path):
    """Four processes writing 25 rows each leave exactly 100 rows."""
    database = tmp_path / "shared.sqlite3"
    code = (
        "import sys; from llamabot_imagebot import _history\n"
        "for i in range(25):\n"
        "    _history.record({'time': '2026-11-23T00:00:00+00:00', 'prompt': f'p{sys.argv[1]}-{i}', 'model': 'm',"
        " 'outputs': [f'/tmp/x{sys.argv[1]}-{i}.png'], 'cost': 0.01}, __import__('pathlib').Path(sys.argv[2]))\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", code, str(n), str(database)]) for n in range(4)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    rows = _history.recent(limit=1000, path=database)
    assert len(rows) == 100 and len({r["prompt"] for r in rows}) == 100


def test_cli_history_and_cost_commands(capsys, tmp_path):
    """history (text, --json, --search, --path) and cost (--by day/model) read a populated database."""
    image = tmp_path / "banner_3.png"
    image.write_bytes(PNG)
    rows = [
        {
            "time": "2026-11-20T10:00:00+00:00",
            "prompt": "A red fox",
            "model": "gpt-image-2",
            "outputs": [str(image)],
            "cost": 0.04,
            "n_images": 1,
        },
        {
            "time": "2026-11-21T10:00:00+00:00",
            "prompt": "A lighthouse",
            "model": "openrouter/google/gemini-2.5-flash-image",
            "outputs": ["/x/l.jpg"],
            "cost": 0.039,
            "n_images": 1,
        },
        {
            "time": "2026-11-21T11:00:00+00:00",
            "prompt": "A bad one",
            "model": "gpt-image-2",
            "outputs": [],
            "error": "BadRequestError: no",
            "n_images": 0,
        },
    ]
    for row in rows:
        _history.record(row)

    assert main(["history", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["prompt"] for r in listed] == ["A bad one", "A lighthouse", "A red fox"]

    assert main(["history", "--search", "fox"]) == 0
    out = capsys.readouterr().out
    assert "A red fox" in out and "lighthouse" not in out

    assert main(["history", "--path", str(image), "--json"]) == 0
    (which,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert which["prompt"] == "A red fox"
    assert main(["history", "--path", str(tmp_path / "unknown.png")]) == 1
    capsys.readouterr()

    assert main(["cost", "--by", "model", "--json"]) == 0
    by_model = {r["model"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert by_model["gpt-image-2"]["cost"] == pytest.approx(0.04) and by_model["gpt-image-2"]["failures"] == 1
    assert main(["cost"]) == 0
    header, *days = capsys.readouterr().out.splitlines()
    assert header.split() == ["day", "generations", "images", "cost"]
    assert days[0].startswith("2026-11-20") and "$0.0400" in days[0] and days[1].startswith("2026-11-21")


def test_cli_records_history_by_default(provider, capsys, monkeypatch):
    """A command-line run lands in the history; `history --path` answers which prompt made the file."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    provider.gpt_image([make_image("PNG", (5, 5))])
    assert main(["A tiny square", "--api-base", provider.base]) == 0
    saved = capsys.readouterr().out.strip()
    assert main(["history", "--path", saved, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["prompt"] == "A tiny square"


def _png_text_chunks(data: bytes) -> list[bytes]:
    """The keywords of a PNG's text chunks, in order."""
    import struct

    keywords, position = [], 8
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        if kind in (b"tEXt", b"iTXt"):
            keywords.append(body.split(b"\0", 1)[0])
        position += 12 + length
    return keywords


def _jpeg_app_segments(data: bytes) -> list[bytes]:
    """Each metadata segment before the scan, as a short label: APP0, Exif, XMP or the marker."""
    import struct

    labels, position = [], 2
    while data[position + 1] != 0xDA:
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        body = data[position + 4 : position + 2 + length]
        marker = data[position + 1]
        labels.append(
            b"APP0"
            if marker == 0xE0
            else b"Exif"
            if body.startswith(b"Exif\0")
            else b"XMP"
            if b"xap/1.0" in body[:40]
            else bytes([marker])
        )
        position += 2 + length
    return labels


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_saving_twice_keeps_one_record(provider, fmt):
    """An image ImageBot already saved, saved again with metadata: one record, replaced, never doubled."""
    provider.gpt_image([make_image(fmt)])
    bot = bot_for(provider, imagebot_metadata=True)
    first = bot("First prompt")
    provider.server.clear()
    provider.gpt_image([first.read_bytes()])
    again = bot("Second prompt", save_path=f"again{first.suffix}")
    data = again.read_bytes()
    assert lmb.image_info(again)["prompt"] == "Second prompt"
    if fmt == "PNG":
        assert _png_text_chunks(data) == [b"parameters", b"imagebot"]
    else:
        assert _jpeg_app_segments(data).count(b"XMP") == 1


def test_any_prompt_round_trips_exactly():
    """Non-Latin prompts survive in both PNG chunks (UTF-8 iTXt, not lossy tEXt)."""
    from llamabot_imagebot._provenance import embed

    prompt = "日本の猫 — café au lait ☕"
    data = embed(PNG, "image/png", {"prompt": prompt, "model": "m"})
    with Image.open(io.BytesIO(data)) as image:
        assert image.info["parameters"].startswith(prompt)
    assert extract(data)["prompt"] == prompt


def test_jpeg_segments_keep_the_spec_order():
    """Without JFIF, an Exif APP1 stays first and our XMP follows it (readers look for Exif first)."""
    import struct

    exif = b"Exif\0\0" + b"MM\0*\0\0\0\x08" + b"\0\0" + b"\0\0\0\0"  # an empty IFD
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    jpeg = JPEG
    if jpeg[2:4] == b"\xff\xe0":  # drop JFIF
        jpeg = jpeg[:2] + jpeg[4 + struct.unpack(">H", jpeg[4:6])[0] :]
    embedded = embed(jpeg[:2] + app1 + jpeg[2:], "image/jpeg", {"prompt": "p", "model": "m"})
    assert _jpeg_app_segments(embedded)[:2] == [b"Exif", b"XMP"]
    assert same_pixels(embedded, JPEG)


def test_a_provider_record_is_never_taken_for_ours(provider):
    """A WEBP that arrives with its own XMP (even one shaped like ours): ours goes beside it and wins."""
    fake = (
        b'<x:xmpmeta><rdf:Description imagebot:provenance="{&quot;prompt&quot;: &quot;FAKE PROMPT&quot;}"/></x:xmpmeta>'
    )
    buffer = io.BytesIO()
    make_webp = Image.new("RGB", (8, 6), (10, 200, 30))
    make_webp.save(buffer, format="WEBP", xmp=fake)
    provider.gpt_image([buffer.getvalue()])
    path = bot_for(provider, imagebot_metadata=True)("The real prompt")
    assert path.read_bytes() == buffer.getvalue()  # their XMP is left as it was, not doubled
    assert lmb.image_info(path)["prompt"] == "The real prompt"
