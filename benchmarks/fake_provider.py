"""A local fake image provider for the benchmarks (stdlib only, run in its own process).

The first path segments choose the behaviour, so one server serves every figure:
``/lat<ms>/<kind>/images/generations`` where kind is ``b64small`` (a tiny PNG as
base64), ``b64mid`` (a 256 KB PNG as base64), ``url48`` (a URL to a 48 MB image),
``b64big`` (the 48 MB image as base64) or ``limited<N>`` (a tiny PNG, but at most N requests in any 60 s: beyond
that a 429 with ``Retry-After``, as OpenAI's limits answer). ``/lat<ms>/<kind>/chat/completions``
answers a chat model asked for a file name (streamed when asked to). ``GET /files/big.png``
serves the 48 MB image. ``GET /stats`` gives the requests and 429s counted so far per kind
(``?reset=1`` zeroes them).

Run: ``python benchmarks/fake_provider.py`` prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import base64
import collections
import json
import math
import struct
import sys
import threading
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
BIG = BIG + b"\0" * (BIG_BYTES - len(BIG) - 12) + SMALL[-12:]  # ends with IEND: a complete PNG
# A complete 256 KB PNG (the tiny one with a large comment chunk): big enough that holding
# every result of a batch would show in memory.
_FILLER = b"Comment\x00" + bytes(range(256)) * 1024
MID = (
    SMALL[:-12]
    + struct.pack(">I", len(_FILLER))
    + b"tEXt"
    + _FILLER
    + struct.pack(">I", zlib.crc32(b"tEXt" + _FILLER))
    + SMALL[-12:]
)
MID_BODY = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(MID).decode()}]}).encode()
SMALL_BODY = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(SMALL).decode()}]}).encode()
BIG_B64_BODY = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(BIG).decode()}]}).encode()


WINDOW = 60.0
_lock = threading.Lock()
_arrivals: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
_stats: dict[str, dict[str, int]] = collections.defaultdict(lambda: {"requests": 0, "limited": 0})


def _admit(kind: str, limit: int) -> float | None:
    """Count a request of ``kind``; None if within its limit, else the seconds until it would be."""
    now = time.monotonic()
    with _lock:
        _stats[kind]["requests"] += 1
        if limit <= 0:
            return None
        arrivals = _arrivals[kind]
        while arrivals and arrivals[0] <= now - WINDOW:
            arrivals.popleft()
        if len(arrivals) >= limit:
            _stats[kind]["limited"] += 1
            return arrivals[0] + WINDOW - now
        arrivals.append(now)
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do: headers and body would otherwise wait 40 ms for an ACK

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/stats"):
            with _lock:
                body = json.dumps(_stats).encode()
                if "reset=1" in self.path:
                    _stats.clear()
                    _arrivals.clear()
            return self._send(body)
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
        wait = _admit(kind, int(kind[7:]) if kind.startswith("limited") and kind[7:].isdigit() else 0)
        if wait is not None:
            error = {
                "error": {
                    "message": "Rate limit reached for requests",
                    "type": "requests",
                    "code": "rate_limit_exceeded",
                }
            }
            payload = json.dumps(error).encode()
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", str(math.ceil(wait)))
            self.send_header("retry-after-ms", str(math.ceil(wait * 1000)))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return None
        time.sleep(latency)
        if self.path.endswith("/chat/completions"):
            return self._chat(body)
        if kind == "url48":
            host = self.headers.get("Host")
            payload = json.dumps({"created": 1, "data": [{"url": f"http://{host}/files/big.png"}]}).encode()
            return self._send(payload)
        return self._send({"b64big": BIG_B64_BODY, "b64mid": MID_BODY}.get(kind, SMALL_BODY))

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


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # 64 clients connecting at once would overflow the default backlog of 5


def main() -> None:
    server = Server(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
