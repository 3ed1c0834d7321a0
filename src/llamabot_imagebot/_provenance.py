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
from datetime import datetime, timezone
from html import escape, unescape

from llamabot_imagebot._version import version

TYPE_CHECKING = False
if TYPE_CHECKING:
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
    return {
        "prompt": image.prompt,
        "revised_prompt": image.revised_prompt,
        "model": image.model,
        "provider": provider,
        "settings": settings,
        "created": now(),
        "generator": f"llamabot-imagebot {version()}",
    }


def now() -> str:
    """The current UTC time, to the second, in ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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


def content_credentials(head: bytes, mime: str) -> bool:
    """Whether a file carries a C2PA manifest (Content Credentials), from its first bytes.

    A manifest's hard binding hashes the file's bytes by offset, so inserting anything ahead of
    it invalidates the signature: such files get our record in a sidecar instead. The manifest
    store sits near the start in every format: a ``caBX`` chunk before PNG's image data, APP11
    JUMBF segments before JPEG's scan, a ``C2PA`` chunk in WEBP, a ``C2PA_GIF`` application
    extension before GIF's first frame.

    :param head: The file's first bytes (the first 64 KiB are plenty).
    :param mime: The file's MIME type.
    """
    try:
        if mime == "image/png":
            return b"caBX" in _png_chunk_types(head)
        if mime == "image/jpeg":
            return any(marker == 0xEB and b"jumb" in body for marker, body in _jpeg_segments(head))
        if mime == "image/webp":
            return b"C2PA" in _webp_chunk_types(head)
        if mime == "image/gif":
            return any(name.startswith(b"C2PA_GIF") for name in _gif_applications(head))
    except (ValueError, struct.error, IndexError):
        return False
    return False


def _png_chunk_types(data: bytes) -> list[bytes]:
    kinds, position = [], 8
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        kind = data[position + 4 : position + 8]
        kinds.append(kind)
        if kind in (b"IDAT", b"IEND"):
            break
        position += 12 + length
    return kinds


def _gif_applications(data: bytes) -> list[bytes]:
    """The identifiers (and authentication codes) of a GIF's application extensions before its first frame."""
    names: list[bytes] = []
    packed = data[10]
    position = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)  # header, screen, colour table
    while position + 2 <= len(data) and data[position] == 0x21:  # an extension block
        label, position = data[position + 1], position + 2
        if label == 0xFF and data[position] == 11:
            names.append(data[position + 1 : position + 12])
        while data[position]:  # its data sub-blocks, ended by a zero length
            position += 1 + data[position]
        position += 1
    return names


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    segments, position = [], 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: no more metadata segments
            break
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        segments.append((marker, data[position + 4 : position + 2 + length]))
        position += 2 + length
    return segments


def _webp_chunk_types(data: bytes) -> list[bytes]:
    kinds, position = [], 12
    while position + 8 <= len(data):
        kinds.append(data[position : position + 4])
        length = struct.unpack("<I", data[position + 4 : position + 8])[0]
        position += 8 + length + (length & 1)
    return kinds


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


def _png_chunks(head: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """``(start, end, type, body)`` of each chunk after the signature, up to the first IDAT (within ``head``)."""
    chunks: list[tuple[int, int, bytes, bytes]] = []
    position = 8
    while True:
        length = struct.unpack(">I", head[position : position + 4])[0]
        kind = bytes(head[_within(head, position + 8) - 4 : position + 8])
        if kind in (b"IDAT", b"IEND"):  # only its start is needed: it is copied, not parsed
            chunks.append((position, position, kind, b""))
            return chunks
        end = _within(head, position + 12 + length)
        chunks.append((position, end, kind, head[position + 8 : position + 8 + length]))
        position = end


def _ours_png(kind: bytes, body: bytes) -> bool:
    """Our own chunks: written by an earlier save, replaced (never duplicated) by the next."""
    return (kind == b"iTXt" and body.startswith((KEY.encode() + b"\x00", b"parameters\x00"))) or (
        kind == b"tEXt" and body.startswith(b"parameters\x00")
    )


def _plan_png(head: bytes, meta: dict[str, Any]) -> Plan:
    if not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    chunks = _png_chunks(head)  # up to the image data: rewritten whole, without our old chunks
    keep_from = chunks[-1][0]
    # iTXt, UTF-8: any prompt round-trips exactly (tEXt is Latin-1).
    text = b"parameters\x00\x00\x00\x00\x00" + parameters_text(meta).encode("utf-8")
    record = KEY.encode() + b"\x00\x00\x00\x00\x00" + json.dumps(meta, ensure_ascii=False).encode("utf-8")
    ours = _png_chunk(b"iTXt", text) + _png_chunk(b"iTXt", record)
    ihdr_end = chunks[0][1]
    others = b"".join(head[start:end] for start, end, kind, body in chunks[1:-1] if not _ours_png(kind, body))
    return keep_from, head[:ihdr_end] + ours + others, b""


def _plan_jpeg(head: bytes, meta: dict[str, Any]) -> Plan:
    if not head.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    segment = _XMP_HEADER + _xmp_packet(meta)
    if len(segment) + 2 > 0xFFFF:
        raise ValueError("XMP too large for one APP1 segment")
    app1 = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
    # Every segment before the scan, rewritten in the order readers expect: JFIF (APP0), Exif
    # (APP1), then our XMP; any XMP with our record in it is dropped, so a re-save never duplicates.
    first, rest, position = [], [], 2
    while head[position] == 0xFF and head[position + 1] != 0xDA:
        length = struct.unpack(">H", head[position + 2 : position + 4])[0]
        end = _within(head, position + 2 + length)
        body = head[position + 4 : end]
        marker = head[position + 1]
        if marker == 0xE0 or (marker == 0xE1 and body.startswith(b"Exif\x00")):
            first.append(head[position:end])
        elif not (marker == 0xE1 and body.startswith(_XMP_HEADER) and b"imagebot:provenance" in body):
            rest.append(head[position:end])
        position = end
    if head[position] != 0xFF:
        raise ValueError("no start of scan within the bytes read")
    return position, b"\xff\xd8" + b"".join(first) + app1 + b"".join(rest), b""


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
    if head[12:16] == b"VP8X" and head[20] & 0x04:
        # WEBP holds one XMP chunk; the provider's (or an earlier save's) is never overwritten or
        # doubled: our record goes to the sidecar instead.
        raise ValueError("the WEBP already carries XMP")
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
