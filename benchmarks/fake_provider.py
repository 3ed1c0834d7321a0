"""A local fake image provider for the benchmarks (stdlib only, run in its own process).

The first path segments choose the behaviour, so one server serves every figure:
``/lat<ms>/<kind>/images/generations`` where kind is ``b64small`` (a tiny PNG as
base64), ``url48`` (a URL to a 48 MB image) or ``b64big`` (the 48 MB image as
base64). ``/lat<ms>/<kind>/chat/completions`` answers a chat model asked for a file
name (streamed when asked to). ``GET /files/big.png`` serves the 48 MB image.

Run: ``python benchmarks/fake_provider.py`` prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIG_BYTES = 48 * 1024 * 1024


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xc8\x1e\x3c" * 8 for _ in range(6))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 6, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


SMALL = tiny_png()
# A PNG signature and header followed by filler: what matters here is size, not pixels.
BIG = SMALL[:33] + bytes(range(256)) * (BIG_BYTES // 256 - 1)
BIG = BIG + b"\0" * (BIG_BYTES - len(BIG))
SMALL_BODY = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(SMALL).decode()}]}).encode()
BIG_B64_BODY = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(BIG).decode()}]}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.endswith("/files/big.png"):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(BIG)))
            self.end_headers()
            view = memoryview(BIG)
            for start in range(0, len(view), 1 << 20):
                self.wfile.write(view[start : start + (1 << 20)])
            return
        self.send_error(404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        parts = self.path.strip("/").split("/")
        latency = int(parts[0][3:]) / 1000 if parts and parts[0].startswith("lat") else 0
        kind = parts[1] if len(parts) > 1 else "b64small"
        time.sleep(latency)
        if self.path.endswith("/chat/completions"):
            return self._chat(body)
        if kind == "url48":
            host = self.headers.get("Host")
            payload = json.dumps({"created": 1, "data": [{"url": f"http://{host}/files/big.png"}]}).encode()
            return self._send(payload)
        return self._send(BIG_B64_BODY if kind == "b64big" else SMALL_BODY)

    def _chat(self, body: dict) -> None:
        name = "red_fox_in_snow"
        if not body.get("stream"):
            message = {"role": "assistant", "content": name}
            payload = {
                "id": "c",
                "object": "chat.completion",
                "created": 1,
                "model": body.get("model", "m"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
            }
            return self._send(json.dumps(payload).encode())
        events = []
        for delta, finish in (({"role": "assistant", "content": name}, None), ({}, "stop")):
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body.get("model", "m"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            events.append(f"data: {json.dumps(chunk)}\n\n")
        events.append("data: [DONE]\n\n")
        return self._send("".join(events).encode(), "text/event-stream")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
