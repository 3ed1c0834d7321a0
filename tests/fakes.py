"""A local HTTP server that impersonates image providers, and test images.

Each ``FakeProvider`` method registers the endpoint one provider's litellm client
calls, answering in that provider's wire shape (see ``shared/PROVIDERS.md``). Every
request that reaches the server is recorded, so tests assert on what really went
over the wire.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


class FakeClock:
    """A clock that moves only when something sleeps on it (``advance`` moves it by hand)."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def sleep(self, seconds: float, cancel: Any = None) -> None:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        self.t += max(0.0, seconds)

    async def asleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


def make_image(fmt: str = "PNG", size: tuple[int, int] = (8, 6), color: tuple[int, ...] = (200, 30, 60)) -> bytes:
    """Return a small real image in ``fmt`` (PNG, JPEG, WEBP or GIF)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


PNG = make_image("PNG")
JPEG = make_image("JPEG")
WEBP = make_image("WEBP")
GIF = make_image("GIF")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="6"><rect width="8" height="6" fill="#c81e3c"/></svg>'
#: What a GPT image model answers for each ``output_format`` it accepts.
BY_OUTPUT_FORMAT = {"png": PNG, "jpeg": JPEG, "webp": WEBP, "gif": GIF, "svg": SVG}
#: Output image tokens the fake GPT image model reports per image (OpenAI's figure for low, 1024x1024).
IMAGE_TOKENS = 272


def tagged(text: bytes, image: bytes = PNG) -> bytes:
    """A complete PNG made unique by ``text``, in a tEXt chunk before IEND (the pixels are ``image``'s)."""
    import struct
    import zlib

    body = b"Comment\x00" + text
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    return image[:-12] + chunk + image[-12:]


def same_pixels(a: bytes, b: bytes) -> bool:
    """Whether two image files decode to the same pixels (metadata may differ)."""
    with Image.open(io.BytesIO(a)) as first, Image.open(io.BytesIO(b)) as second:
        return first.size == second.size and first.tobytes() == second.tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeProvider:
    """Register provider endpoints on a local server and record what reaches them."""

    server: HTTPServer
    received: list[Received] = field(default_factory=list)
    latency: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return self.server.url_for("").rstrip("/")

    def calls(self, path_part: str = "") -> list[Received]:
        """The recorded requests whose path contains ``path_part``."""
        return [r for r in self.received if path_part in r.path]

    def route(self, path: str, answer: Callable[[Request], Response], method: str = "POST") -> None:
        """Answer ``method path`` with ``answer(request)``, recording every request."""

        def handler(request: Request) -> Response:
            body = request.get_data()
            with self._lock:
                self.received.append(
                    Received(request.method, request.path, dict(request.args), dict(request.headers), body)
                )
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.latency:
                    time.sleep(self.latency)
                return answer(request)
            finally:
                with self._lock:
                    self.in_flight -= 1

        self.server.expect_request(path, method=method).respond_with_handler(handler)

    def json_route(self, path: str, payload: Any, status: int = 200, method: str = "POST") -> None:
        self.route(path, lambda _r: Response(json.dumps(payload), status, content_type="application/json"), method)

    def file(self, name: str, data: bytes, content_type: str = "image/png", status: int = 200) -> str:
        """Serve ``data`` at ``GET /files/<name>`` and return its URL."""
        self.route(f"/files/{name}", lambda _r: Response(data, status, content_type=content_type), "GET")
        return f"{self.base}/files/{name}"

    # Provider shapes -----------------------------------------------------------------

    def openai_images(
        self, images: Sequence[bytes] = (PNG,), *, as_url: bool | None = None, path: str = "/images/generations"
    ) -> None:
        """OpenAI's ``/images/generations``: URLs or base64 as the request's response_format asks."""

        def answer(request: Request) -> Response:
            body = json.loads(request.get_data() or b"{}")
            use_url = as_url if as_url is not None else body.get("response_format", "b64_json") == "url"
            data = []
            for i, image in enumerate(images):
                item = {"revised_prompt": f"revised: {body.get('prompt')}"}
                if use_url:
                    item["url"] = self.file(f"img{i}-{len(self.received)}", image)
                else:
                    item["b64_json"] = b64(image)
                data.append(item)
            payload = {"created": 1_700_000_000, "data": data}
            return Response(json.dumps(payload), 200, content_type="application/json")

        self.route(path, answer)

    def gpt_image(self, images: Sequence[bytes] | None = None, path: str = "/images/generations") -> None:
        """A current GPT image model (gpt-image-2): base64 only, no ``revised_prompt``, token ``usage``.

        With no ``images`` it answers ``n`` images in the requested ``output_format`` (png, jpeg,
        webp, gif or svg); the usage reports ``IMAGE_TOKENS`` output image tokens per image,
        which litellm prices at the model's ``output_cost_per_image_token``.
        """

        def answer(request: Request) -> Response:
            try:
                body = json.loads(request.get_data() or b"{}")
            except ValueError:
                body = dict(request.form)  # an edit's multipart form
            fmt = body.get("output_format", "png")
            made = list(images) if images is not None else [BY_OUTPUT_FORMAT[fmt]] * int(body.get("n", 1))
            output = IMAGE_TOKENS * len(made)
            payload = {
                "created": 1_700_000_000,
                "background": "opaque",
                "data": [{"b64_json": b64(image)} for image in made],
                "output_format": fmt,
                "size": body.get("size", "1024x1024"),
                "quality": body.get("quality", "low"),
                "usage": {
                    "input_tokens": 10,
                    "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
                    "output_tokens": output,
                    "output_tokens_details": {"text_tokens": 0, "image_tokens": output},
                    "total_tokens": 10 + output,
                },
            }
            return Response(json.dumps(payload), 200, content_type="application/json")

        self.route(path, answer)

    def openrouter(
        self, images: Sequence[tuple[bytes, str]] = ((PNG, "image/png"),), cost: Any = 0.039, usage: bool = True
    ) -> None:
        """OpenRouter's chat completions, images as data URIs in ``message.images``; ``usage.cost`` is ``cost``
        (any value, to play a provider that reports nonsense), and ``usage=False`` leaves the usage out."""
        payload = {
            "id": "gen-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "google/gemini-2.5-flash-image",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "",
                        "images": [
                            {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64(image)}"}}
                            for image, mime in images
                        ],
                    },
                }
            ],
        }
        if usage:
            payload["usage"] = {"prompt_tokens": 5, "completion_tokens": 1290, "total_tokens": 1295, "cost": cost}
        self.json_route("/chat/completions", payload)

    def vertex_imagen(self, path: str, images: Sequence[bytes] = (PNG,)) -> None:
        payload = {"predictions": [{"bytesBase64Encoded": b64(i), "mimeType": "image/png"} for i in images]}
        self.json_route(path, payload)

    def bedrock(self, model_id: str, images: Sequence[bytes] = (PNG,)) -> None:
        self.json_route(f"/model/{model_id}/invoke", {"images": [b64(i) for i in images]})
