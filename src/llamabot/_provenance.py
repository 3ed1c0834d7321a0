"""Provenance inside image files: what made them, embedded without touching the pixels.

Pure code on bytes. PNG gets a ``tEXt`` chunk ``parameters`` (the de-facto key image
tools read) and an ``iTXt`` chunk ``imagebot`` holding JSON; JPEG gets an XMP packet
(APP1); WEBP gets an XMP chunk (switching to the extended VP8X layout if needed). The
image data itself is copied byte for byte. Other formats (GIF, SVG) get a
``<file>.json`` sidecar, written by the I/O module.
"""

from __future__ import annotations

import json
import struct
import zlib
from html import escape, unescape
from typing import Any

KEY = "imagebot"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_NS = "urn:llamabot-imagebot:provenance:1"
EMBEDDABLE = frozenset({"image/png", "image/jpeg", "image/webp"})


def describe(image: Any, settings: dict[str, Any], provider: str | None) -> dict[str, Any]:
    """The provenance of one generated image: prompt, revised prompt, model, settings, time, version.

    :param image: The :class:`~llamabot.GeneratedImage`.
    :param settings: The settings sent, already free of secrets.
    :param provider: litellm's provider name.
    """
    from llamabot import __version__
    from llamabot._history import now

    return {
        "prompt": image.prompt,
        "revised_prompt": image.revised_prompt,
        "model": image.model,
        "provider": provider,
        "settings": settings,
        "created": now(),
        "generator": f"llamabot-imagebot {__version__}",
    }


def parameters_text(meta: dict[str, Any]) -> str:
    """The ``parameters`` text other image tools show: the prompt, then ``Key: value`` pairs."""
    settings = ", ".join(f"{k}: {v}" for k, v in (meta.get("settings") or {}).items())
    return f"{meta.get('prompt', '')}\nModel: {meta.get('model', '')}" + (f", {settings}" if settings else "")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _xmp_packet(meta: dict[str, Any]) -> bytes:
    payload = escape(json.dumps(meta, ensure_ascii=False), quote=True)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:imagebot="{_XMP_NS}" imagebot:provenance="{payload}"/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def embed(data: bytes, mime: str, meta: dict[str, Any]) -> bytes | None:
    """Return ``data`` with ``meta`` embedded, or ``None`` if this format cannot carry it here.

    :param data: The image file's bytes.
    :param mime: Its MIME type.
    :param meta: JSON-serialisable provenance.
    :return: The new file's bytes; the image data inside is unchanged.
    """
    try:
        if mime == "image/png":
            return _embed_png(data, meta)
        if mime == "image/jpeg":
            return _embed_jpeg(data, meta)
        if mime == "image/webp":
            return _embed_webp(data, meta)
    except (ValueError, struct.error, IndexError):
        return None
    return None


def _embed_png(data: bytes, meta: dict[str, Any]) -> bytes:
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    end_of_ihdr = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
    text = b"parameters\x00" + parameters_text(meta).encode("latin-1", "replace")
    itxt = KEY.encode() + b"\x00\x00\x00\x00\x00" + json.dumps(meta, ensure_ascii=False).encode("utf-8")
    chunks = _png_chunk(b"tEXt", text) + _png_chunk(b"iTXt", itxt)
    return data[:end_of_ihdr] + chunks + data[end_of_ihdr:]


def _embed_jpeg(data: bytes, meta: dict[str, Any]) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    segment = _XMP_HEADER + _xmp_packet(meta)
    if len(segment) + 2 > 0xFFFF:
        raise ValueError("XMP too large for one APP1 segment")
    app1 = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
    position = 2
    if data[2:4] == b"\xff\xe0":  # keep JFIF's APP0 first, as readers expect
        position = 4 + struct.unpack(">H", data[4:6])[0]
    return data[:position] + app1 + data[position:]


def _webp_canvas(data: bytes) -> tuple[int, int, int]:
    """Width, height and VP8X flags (alpha) from a simple-format WEBP's first chunk."""
    kind = data[12:16]
    body = data[20:]
    if kind == b"VP8 ":
        if body[3:6] != b"\x9d\x01\x2a":
            raise ValueError("bad VP8 frame")
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF, 0
    if kind == b"VP8L":
        bits = int.from_bytes(body[1:5], "little")
        alpha = 0x10 if (bits >> 28) & 1 else 0
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, alpha
    raise ValueError("unknown WEBP layout")


def _embed_webp(data: bytes, meta: dict[str, Any]) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WEBP")
    xmp = _xmp_packet(meta)
    xmp_chunk = b"XMP " + struct.pack("<I", len(xmp)) + xmp + (b"\x00" if len(xmp) % 2 else b"")
    if data[12:16] == b"VP8X":
        flags = data[20] | 0x04
        body = data[12:20] + bytes([flags]) + data[21:]
    else:
        width, height, alpha = _webp_canvas(data)
        vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x04 | alpha, 0, 0, 0])
        vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body = vp8x + data[12:]
    body += xmp_chunk
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def extract(data: bytes) -> dict[str, Any] | None:
    """Read provenance back from an image file's bytes, or ``None`` if it has none."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            return _extract_png(data)
        if data.startswith(b"\xff\xd8") or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
            return _extract_xmp(data)
    except (ValueError, struct.error, IndexError, UnicodeDecodeError):
        return None
    return None


def _extract_png(data: bytes) -> dict[str, Any] | None:
    position = 8
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"iTXt" and body.startswith(KEY.encode() + b"\x00"):
            # keyword\0 compression-flag compression-method language\0 translated\0 text
            rest = body[len(KEY) + 3 :]
            _, _, rest = rest.partition(b"\x00")
            _, _, text = rest.partition(b"\x00")
            return json.loads(text.decode("utf-8"))
        if kind == b"IEND":
            break
        position += 12 + length
    return None


def _extract_xmp(data: bytes) -> dict[str, Any] | None:
    marker = b'imagebot:provenance="'
    start = data.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = data.index(b'"', start)
    return json.loads(unescape(data[start:end].decode("utf-8")))
