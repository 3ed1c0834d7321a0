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

    :param image: The ``GeneratedImage``.
    :param settings: The settings sent, already free of secrets.
    :param provider: litellm's provider name.
    """
    from llamabot._history import now
    from llamabot._version import version

    return {
        "prompt": image.prompt,
        "revised_prompt": image.revised_prompt,
        "model": image.model,
        "provider": provider,
        "settings": settings,
        "created": now(),
        "generator": f"llamabot-imagebot {version()}",
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


#: How much of a file's start ``plan`` needs (a JPEG's APP0 segment is at most 64 KB).
HEAD_BYTES = 0x10000 + 16

#: How to embed: replace the file's first ``keep_from`` bytes with ``head``, then append ``tail``.
Plan = tuple[int, bytes, bytes]


def plan(head: bytes, size: int, mime: str, meta: dict[str, Any]) -> Plan | None:
    """Where ``meta`` goes in a file, from its first bytes only, or ``None`` if it cannot go in.

    The rest of the file is copied unchanged, so an image of any size is never read whole.

    :param head: The file's first ``HEAD_BYTES`` bytes (or all of it, if shorter).
    :param size: The file's size in bytes.
    :param mime: Its MIME type.
    :param meta: JSON-serialisable provenance.
    :return: ``(keep_from, head, tail)``: the new file is ``head + file[keep_from:] + tail``.
    """
    try:
        if mime == "image/png":
            return _plan_png(head, meta)
        if mime == "image/jpeg":
            return _plan_jpeg(head, meta)
        if mime == "image/webp":
            return _plan_webp(head, size, meta)
    except (ValueError, struct.error, IndexError):
        return None
    return None


def embed(data: bytes, mime: str, meta: dict[str, Any]) -> bytes | None:
    """Return ``data`` with ``meta`` embedded, or ``None`` if this format cannot carry it here.

    :param data: The image file's bytes.
    :param mime: Its MIME type.
    :param meta: JSON-serialisable provenance.
    :return: The new file's bytes; the image data inside is unchanged.
    """
    planned = plan(data[:HEAD_BYTES], len(data), mime, meta)
    if planned is None:
        return None
    keep_from, head, tail = planned
    return head + data[keep_from:] + tail


def _within(head: bytes, end: int) -> int:
    if end > len(head):
        raise ValueError("header beyond the bytes read")
    return end


def _plan_png(head: bytes, meta: dict[str, Any]) -> Plan:
    if not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    end_of_ihdr = _within(head, 8 + 8 + struct.unpack(">I", head[8:12])[0] + 4)
    text = b"parameters\x00" + parameters_text(meta).encode("latin-1", "replace")
    itxt = KEY.encode() + b"\x00\x00\x00\x00\x00" + json.dumps(meta, ensure_ascii=False).encode("utf-8")
    chunks = _png_chunk(b"tEXt", text) + _png_chunk(b"iTXt", itxt)
    return end_of_ihdr, head[:end_of_ihdr] + chunks, b""


def _plan_jpeg(head: bytes, meta: dict[str, Any]) -> Plan:
    if not head.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    segment = _XMP_HEADER + _xmp_packet(meta)
    if len(segment) + 2 > 0xFFFF:
        raise ValueError("XMP too large for one APP1 segment")
    app1 = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
    position = 2
    if head[2:4] == b"\xff\xe0":  # keep JFIF's APP0 first, as readers expect
        position = _within(head, 4 + struct.unpack(">H", head[4:6])[0])
    return position, head[:position] + app1, b""


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


def _plan_webp(head: bytes, size: int, meta: dict[str, Any]) -> Plan:
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        raise ValueError("not a WEBP")
    xmp = _xmp_packet(meta)
    xmp_chunk = b"XMP " + struct.pack("<I", len(xmp)) + xmp + (b"\x00" if len(xmp) % 2 else b"")
    if head[12:16] == b"VP8X":
        keep_from = _within(head, 21)
        start = head[12:20] + bytes([head[20] | 0x04])  # the XMP flag
    else:
        width, height, alpha = _webp_canvas(head)
        keep_from = 12
        start = b"VP8X" + struct.pack("<I", 10) + bytes([0x04 | alpha, 0, 0, 0])
        start += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body_size = len(start) + (size - keep_from) + len(xmp_chunk)
    return keep_from, b"RIFF" + struct.pack("<I", 4 + body_size) + b"WEBP" + start, xmp_chunk


#: The fields of our record; anything else found in a file is not ours and is not returned.
FIELDS = ("prompt", "revised_prompt", "model", "provider", "settings", "created", "generator")


def extract(head: bytes, tail: bytes = b"") -> dict[str, Any] | None:
    """Read our provenance back from an image file's first (and last) bytes, or ``None``.

    Never raises for malformed content: hostile or damaged files give ``None``.

    :param head: The file's first bytes (our PNG chunk and JPEG segment are near the start).
    :param tail: The file's last bytes (our WEBP chunk is at the end).
    """
    try:
        if head.startswith(_PNG_SIGNATURE):
            return record(_extract_png(head))
        if head.startswith(b"\xff\xd8") or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            return record(_extract_xmp(head) or _extract_xmp(tail))
    except (ValueError, struct.error, IndexError, UnicodeDecodeError, RecursionError):
        return None
    return None


def record(text: str | bytes | None) -> dict[str, Any] | None:
    """Our record from its JSON text: a dict of our known fields, else ``None`` (never raises)."""
    if text is None:
        return None
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):  # malformed, or nested deep enough to exhaust the stack
        return None
    if not isinstance(found, dict) or not any(key in found for key in FIELDS):
        return None
    return {key: found[key] for key in FIELDS if key in found}


def _extract_png(data: bytes) -> str | None:
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
            return text.decode("utf-8")
        if kind == b"IEND":
            break
        position += 12 + length
    return None


def _extract_xmp(data: bytes) -> str | None:
    marker = b'imagebot:provenance="'
    start = data.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = data.index(b'"', start)
    return unescape(data[start:end].decode("utf-8"))
