"""Large base64 images go from the provider's answer to a temporary file, never whole into memory.

The rewriter is checked on its own (property tests over arbitrary JSON cut at
arbitrary points), then end to end: a real litellm reads a local server's answer,
and the saved file, the response litellm returned and the temporary folder are checked.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import gzip
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path

import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from werkzeug import Response

import llamabot as lmb
from llamabot import _spool
from llamabot._exceptions import InvalidImageError
from tests.fakes import PNG, b64


@pytest.fixture
def spool_dir(tmp_path_factory, monkeypatch) -> Path:
    """Where spool files go during the test (the system temp folder, redirected)."""
    folder = tmp_path_factory.mktemp("spool")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def spool_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("imagebot-*.spool"))


def rewrite(body: bytes, spools: _spool.Spools, cuts: list[int], min_chars: int) -> bytes:
    """Feed ``body`` to a Rewriter in pieces cut at ``cuts``."""
    rewriter = _spool.Rewriter(spools, min_chars=min_chars)
    out, start = [], 0
    for cut in [*sorted(set(cuts)), len(body)]:
        out.append(rewriter.feed(body[start:cut]))
        start = max(start, cut)
    out.append(rewriter.finish())
    return b"".join(out)


def restore(value, spools: _spool.Spools):
    """Replace each token of ``spools`` by the base64 of its file (taking and deleting the file)."""
    if isinstance(value, dict):
        return {key: restore(item, spools) for key, item in value.items()}
    if isinstance(value, list):
        return [restore(item, spools) for item in value]
    if isinstance(value, str) and _spool.TOKEN_PREFIX in value:
        prefix, _, tail = value.partition(_spool.TOKEN_PREFIX)
        path = spools.take(_spool.TOKEN_PREFIX + tail)
        if path is None:  # not a token of this call (the document may hold such text itself)
            return value
        data = path.read_bytes()
        path.unlink()
        return prefix + base64.b64encode(data).decode()
    return value


# --- the rewriter on its own ------------------------------------------------------

base64_leaf = st.binary(max_size=400).map(lambda data: base64.b64encode(data).decode())
data_uri_leaf = base64_leaf.map(lambda text: f"data:image/png;base64,{text}")
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=80),
    base64_leaf,
    data_uri_leaf,
    st.floats(allow_nan=False),
)
documents = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=documents,
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12),
    escape_slashes=st.booleans(),
    ensure_ascii=st.booleans(),
    min_chars=st.sampled_from([1, 8, 64, 10_000]),
)
def test_rewriting_never_changes_what_the_json_says(spool_dir, doc, cuts, escape_slashes, ensure_ascii, min_chars):
    """Any JSON, cut anywhere: with tokens put back, the document is the one the server sent."""
    body = json.dumps({"data": doc}, ensure_ascii=ensure_ascii).encode()
    if escape_slashes:  # some servers write "\/" for "/"
        body = body.replace(b"/", b"\\/")
    spools = _spool.Spools()
    rewritten = rewrite(body, spools, cuts, min_chars)
    assert restore(json.loads(rewritten), spools) == {"data": doc}
    spools.close()
    assert spool_files(spool_dir) == []


def test_long_base64_strings_become_tokens_and_files(spool_dir):
    image = os.urandom(30_000)
    body = json.dumps({"data": [{"b64_json": b64(image), "revised_prompt": "a fox"}]}).encode()
    spools = _spool.Spools()
    rewritten = rewrite(body, spools, list(range(0, len(body), 997)), min_chars=1000)
    token = json.loads(rewritten)["data"][0]["b64_json"]
    assert re.fullmatch(re.escape(_spool.TOKEN_PREFIX) + "[0-9a-f]{32}", token)
    assert json.loads(rewritten)["data"][0]["revised_prompt"] == "a fox"
    assert len(rewritten) < 200
    path = spools.take(token)
    assert path is not None and path.read_bytes() == image
    assert spools.take(token) is None  # handed over once
    path.unlink()


@pytest.mark.parametrize(
    "text",
    [
        "word " * 3000,  # long, but prose
        b64(os.urandom(9000)) + " tail",  # a space: not base64
        b64(os.urandom(4500)) + "==" + b64(os.urandom(4500)),  # padding in the middle
        b64(os.urandom(9000)) + "\\\\n",  # an escaped backslash, then n
        b64(os.urandom(9000)) + '\\"',  # an escaped quote
        "\\u00e9" + b64(os.urandom(9000)),  # a unicode escape
        b64(os.urandom(9001))[:-1] + "A",  # one character too many
    ],
)
def test_strings_that_are_not_base64_pass_through_byte_for_byte(spool_dir, text):
    body = b'{"x": "' + text.encode() + b'", "y": 1}'
    spools = _spool.Spools()
    rewritten = rewrite(body, spools, list(range(0, len(body), 4093)), min_chars=1000)
    assert json.loads(rewritten) == json.loads(body)
    spools.close()
    assert spool_files(spool_dir) == []


def test_a_body_cut_short_comes_back_as_it_was(spool_dir):
    body = json.dumps({"data": [{"b64_json": b64(os.urandom(20_000))}]}).encode()[:-5000]
    spools = _spool.Spools()
    assert rewrite(body, spools, list(range(0, len(body), 1000)), min_chars=1000) == body
    spools.close()
    assert spool_files(spool_dir) == []


def test_a_call_that_already_ended_keeps_no_file(spool_dir):
    """An attempt abandoned at the deadline may read its answer later: nothing is left behind."""
    spools = _spool.Spools()
    spools.close()
    body = json.dumps({"b64_json": b64(os.urandom(20_000))}).encode()
    assert json.loads(rewrite(body, spools, [], min_chars=1000)) == json.loads(body)
    assert spool_files(spool_dir) == []


# --- end to end through a real litellm ------------------------------------------


def big_png(min_base64_chars: int) -> bytes:
    """A real PNG whose base64 is at least ``min_base64_chars`` long (noise does not compress)."""
    side = int((min_base64_chars * 3 / 4 / 3) ** 0.5) + 16
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=0)
    data = buffer.getvalue()
    assert len(b64(data)) >= min_base64_chars
    return data


@pytest.fixture(scope="module")
def large_png() -> bytes:
    """Over the default threshold: the default path, untuned."""
    return big_png(_spool.MIN_CHARS + 1000)


@pytest.fixture
def low_threshold(monkeypatch) -> int:
    """Spool anything over 4 KB, so small test images take the same path as large ones."""
    monkeypatch.setattr(_spool, "MIN_CHARS", 4096)
    return 4096


def test_large_base64_image_is_saved_whole_and_litellm_never_holds_it(provider, spool_dir, large_png, mocker):
    provider.gpt_image([large_png])
    spy = mocker.spy(litellm, "image_generation")
    bot = lmb.ImageBot(model="gpt-image-1", api_base=provider.base, api_key="sk-test")
    path = bot("A fox", save_path="fox.png")
    assert path.read_bytes() == large_png
    # What litellm parsed and returned was a short token, not 9 MB of base64.
    returned = spy.spy_return.data[0].b64_json
    assert returned.startswith(_spool.TOKEN_PREFIX) and len(returned) < 100
    assert spy.spy_return._hidden_params.get("response_cost") is not None  # litellm still priced it
    gc.collect()
    assert spool_files(spool_dir) == []


def test_gzip_encoded_answer(provider, spool_dir, low_threshold):
    image = big_png(20_000)
    payload = gzip.compress(json.dumps({"created": 1, "data": [{"b64_json": b64(image)}]}).encode())
    provider.route(
        "/images/generations",
        lambda _r: Response(payload, 200, content_type="application/json", headers={"Content-Encoding": "gzip"}),
    )
    path = lmb.ImageBot(model="gpt-image-1", api_base=provider.base, api_key="sk-test")("A fox")
    assert path.read_bytes() == image


def test_every_image_of_n_is_saved(provider, spool_dir, low_threshold):
    first, second = big_png(20_000), big_png(30_000)
    provider.gpt_image([first, second])
    path = lmb.ImageBot(model="gpt-image-1", api_base=provider.base, api_key="sk-test", n=2)("A fox")
    assert path.read_bytes() == first
    assert path.with_name("a_fox_2.png").read_bytes() == second
    gc.collect()
    assert spool_files(spool_dir) == []


def test_openrouter_data_uri(provider, spool_dir, low_threshold):
    image = big_png(20_000)
    provider.openrouter([(image, "image/png")])
    bot = lmb.ImageBot(model="openrouter/google/gemini-2.5-flash-image", api_base=provider.base, api_key="or-key")
    assert bot("A fox").read_bytes() == image


def test_vertex_imagen(provider, spool_dir, low_threshold):
    image = big_png(20_000)
    route = "/v1/projects/p/locations/us-central1/publishers/google/models/imagen:predict"
    provider.vertex_imagen(route, [image])
    bot = lmb.ImageBot(model="vertex_ai/imagen-3.0-generate-002", api_base=provider.base + route, api_key="vx")
    assert bot("A fox").read_bytes() == image


def test_bedrock_nova_canvas(provider, spool_dir, low_threshold):
    image = big_png(20_000)
    provider.bedrock("amazon.nova-canvas-v1:0", [image])
    bot = lmb.ImageBot(
        model="bedrock/amazon.nova-canvas-v1:0", api_base=provider.base, api_key="br", aws_region_name="us-east-1"
    )
    assert bot("A fox").read_bytes() == image


@pytest.mark.parametrize("model", ["gpt-image-1", "bedrock/amazon.nova-canvas-v1:0"])
def test_async_call(provider, spool_dir, low_threshold, mocker, model):
    """Native async (OpenAI path) and litellm's thread executor (bedrock) both spool."""
    image = big_png(20_000)
    provider.gpt_image([image])
    provider.bedrock("amazon.nova-canvas-v1:0", [image])
    spy = mocker.spy(litellm, "aimage_generation")
    extra = {"aws_region_name": "us-east-1"} if model.startswith("bedrock/") else {}
    bot = lmb.ImageBot(model=model, api_base=provider.base, api_key="sk-test", **extra)
    path = asyncio.run(bot.acall("A fox", save_path="fox.png"))
    assert path.read_bytes() == image
    assert spy.spy_return.data[0].b64_json.startswith(_spool.TOKEN_PREFIX)
    gc.collect()
    assert spool_files(spool_dir) == []


def test_results_of_a_saving_batch_still_give_their_base64(provider, spool_dir, low_threshold):
    image = big_png(20_000)
    provider.gpt_image([image])
    bot = lmb.ImageBot(model="gpt-image-1", api_base=provider.base, api_key="sk-test")
    (images,) = bot.generate_batch(["A fox"], progress=False)
    assert images[0].path.read_bytes() == image
    assert images[0].data == image
    assert images[0].b64_json == b64(image)
    assert images[0].data_uri == f"data:image/png;base64,{b64(image)}"
    assert len(spool_files(spool_dir)) == 1  # the result owns its file while it lives
    del images
    gc.collect()
    assert spool_files(spool_dir) == []


def test_calls_that_save_nothing_keep_base64_in_memory(provider, spool_dir, low_threshold, mocker):
    image = big_png(20_000)
    provider.gpt_image([image])
    spy = mocker.spy(litellm, "image_generation")
    bot = lmb.ImageBot(model="gpt-image-1", api_base=provider.base, api_key="sk-test")
    assert bot("A fox", return_url=True) == f"data:image/png;base64,{b64(image)}"
    assert spy.spy_return.data[0].b64_json == b64(image)  # litellm saw the answer as sent
    assert bot.generate("A fox")[0].b64_json == b64(image)
    assert spy.spy_return.data[0].b64_json == b64(image)
    assert spool_files(spool_dir) == []


def test_a_provider_cannot_name_a_spool_file(provider, spool_dir, low_threshold):
    """A token is only honoured if this call made it: a forged one is just bad base64."""
    secret = spool_dir / "imagebot-0123.spool"
    secret.write_bytes(PNG)
    forged = _spool.TOKEN_PREFIX + "0" * 32
    provider.json_route("/images/generations", {"created": 1, "data": [{"b64_json": forged}]})
    bot = lmb.ImageBot(model="gpt-image-1", api_base=provider.base, api_key="sk-test")
    with pytest.raises(InvalidImageError):
        bot("A fox")
    assert list(Path.cwd().iterdir()) == []


def test_an_attempt_abandoned_at_the_deadline_leaves_no_file(provider, spool_dir, low_threshold):
    provider.gpt_image([big_png(20_000)])
    provider.latency = 1.0
    bot = lmb.ImageBot(model="gpt-image-1", api_base=provider.base, api_key="sk-test", timeout=0.3, num_retries=0)
    with pytest.raises(litellm.Timeout):
        bot("A fox")
    time.sleep(1.5)  # the abandoned attempt reads its answer after the call ended
    gc.collect()
    assert spool_files(spool_dir) == []
    assert list(Path.cwd().iterdir()) == []


def test_without_a_usable_temp_folder_the_image_is_kept_in_memory(provider, tmp_path, monkeypatch, low_threshold):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    image = big_png(20_000)
    provider.gpt_image([image])
    path = lmb.ImageBot(model="gpt-image-1", api_base=provider.base, api_key="sk-test")("A fox")
    assert path.read_bytes() == image
