"""Keep large base64 images out of memory while litellm reads the provider's answer.

A provider's JSON answer carries each image as one base64 string: 64 MB of text for
a 48 MB image, which httpx, ``json`` and litellm's logging then copy several times
over. Inside ImageBot's saving calls, a JSON body is instead read through
:class:`Rewriter`: a base64 string longer than :data:`MIN_CHARS` is decoded as it
arrives into a temporary file and replaced in the body by a short token that only
this call's :class:`Spools` can resolve. litellm parses a small answer, and the
image is copied from the file to its destination.

Only strings made of base64 characters (optionally behind a ``data:…;base64,``
prefix) are replaced; anything else passes through byte for byte. Other code in
the process is unaffected: the hook only acts inside :func:`spooling`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import os
import re
import secrets
import tempfile
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Shorter base64 strings stay in the answer as they are (a typical image is 2-4 MB).
MIN_CHARS = 8 << 20
#: What a replaced string starts with; ``-`` is not base64, so no real image can look like one.
TOKEN_PREFIX = "imagebot-spool-"

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
# The content of a JSON string up to its closing quote (or a lone trailing backslash).
_STRING_BODY = re.compile(rb'(?:[^"\\]+|\\.)*', re.DOTALL)
_DATA_PREFIX = re.compile(rb"data:[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+(?:;[A-Za-z0-9=._+-]*)*?;base64,", re.IGNORECASE)
_STRUCTURE = re.compile(rb"[{}\[\],:]")
_READ_SIZE = 3 << 20  # a multiple of 3, so pieces re-encode to the same base64

_active: contextvars.ContextVar[Spools | None] = contextvars.ContextVar("imagebot_spools", default=None)
_install_lock = threading.Lock()


class Spools:
    """The temporary files one call decoded images into, by token; thread-safe.

    A file is handed over with :meth:`take`; :meth:`close` deletes every file not
    taken (failed attempts, an attempt abandoned at the deadline).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, Path] = {}
        self._closed = False

    def create(self) -> tuple[str, Path, IO[bytes]]:
        """A new token and the empty temporary file behind it, open for writing."""
        fd, name = tempfile.mkstemp(prefix="imagebot-", suffix=".spool")
        token = TOKEN_PREFIX + secrets.token_hex(16)
        with self._lock:
            closed = self._closed
            if not closed:
                self._files[token] = Path(name)
        if closed:  # an attempt that outlived its call: keep nothing
            os.close(fd)
            os.unlink(name)
            raise RuntimeError("ImageBot's call already ended")
        return token, Path(name), os.fdopen(fd, "wb")

    def discard(self, token: str) -> None:
        """Delete the file behind ``token`` now (a string that turned out not to be base64)."""
        with self._lock:
            path = self._files.pop(token, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def take(self, token: str) -> Path | None:
        """Hand over the file behind ``token``; the caller deletes it when done.

        A token only appears in a body once its file is complete, so any token
        this call made stands for a whole image.
        """
        with self._lock:
            return self._files.pop(token, None)

    def close(self) -> None:
        """Delete every file not taken; later files are refused."""
        with self._lock:
            self._closed = True
            left, self._files = list(self._files.values()), {}
        for path in left:
            path.unlink(missing_ok=True)


def _unescape(raw: bytes) -> bytes | None:
    """The base64 text of raw JSON string content, or None if it holds anything else.

    ``\\/`` is the one escape base64 can carry. Anything unusual (line breaks, say)
    is left to the ordinary, tolerant path.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\/", b"/")
        if b"\\" in raw:
            return None
    return None if raw.translate(None, _ALPHABET) else raw


class _Decoder:
    """Decodes one base64 string, piece by piece, into a spool file.

    Only canonical base64 is accepted (padded, nothing after the padding, no stray
    bits), so a token always stands for exactly the text it replaced.
    """

    def __init__(self, spools: Spools, prefix: bytes) -> None:
        self.spools = spools
        self.prefix = prefix
        self.token, self.path, self.file = spools.create()
        self.quartet = b""  # characters carried to the next piece (fewer than 4)
        self.last = b""  # the last four characters decoded
        self.padded = False

    def write(self, text: bytes) -> bool:
        """Decode base64 ``text``; False if it cannot continue a valid string (nothing consumed)."""
        if self.padded and text.strip(b"="):
            return False  # padding ends a base64 string
        equals = text.find(b"=")
        if equals >= 0:
            if text[equals:].strip(b"="):
                return False
            self.padded = True
        data = self.quartet + text
        cut = len(data) - len(data) % 4
        try:
            self.file.write(binascii.a2b_base64(data[:cut]))
        except binascii.Error:
            return False
        self.quartet = data[cut:]
        if cut:
            self.last = data[cut - 4 : cut]
        return True

    def finish(self) -> bool:
        """Close the file; False if the string was not canonical base64."""
        if self.quartet or (self.padded and base64.b64encode(binascii.a2b_base64(self.last)) != self.last):
            return False
        self.file.close()
        return True

    def undo(self) -> Iterator[bytes]:
        """Give the string back as text (its prefix, then the base64 re-encoded) and delete the file."""
        try:
            yield self.prefix
            self.file.flush()
            with open(self.path, "rb") as file:
                while piece := file.read(_READ_SIZE):
                    yield base64.b64encode(piece)
            yield self.quartet
        finally:
            self.abort()

    def abort(self) -> None:
        """Close and delete the file."""
        with contextlib.suppress(OSError):
            self.file.close()
        self.spools.discard(self.token)


class Rewriter:
    """Rewrites a JSON body piece by piece, moving long base64 strings into spool files.

    :param spools: Where the decoded images go.
    :param min_chars: Strings shorter than this pass through unchanged (default :data:`MIN_CHARS`).
    """

    def __init__(self, spools: Spools, min_chars: int | None = None) -> None:
        self.spools = spools
        self.min_chars = MIN_CHARS if min_chars is None else min_chars
        self._in_string = False
        self._carry = b""  # a backslash whose escaped character is in the next piece
        self._raw = bytearray()  # the current string so far, while undecided
        self._decoder: _Decoder | None = None
        self._plain = False  # the current string passes through as it is
        self._open: list[int] = []  # the containers around the current point: { or [
        self._key_next = False  # a string starting now is an object key (never replaced)

    def feed(self, chunk: bytes) -> bytes:
        """Take the next piece of the body; return the rewritten bytes ready so far."""
        out: list[bytes] = []
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        i, n = 0, len(data)
        while i < n:
            if not self._in_string:
                j = data.find(b'"', i)
                self._track(data, i, n if j < 0 else j)
                if j < 0:
                    out.append(data[i:])
                    break
                out.append(data[i : j + 1])
                i = j + 1
                self._in_string, self._plain = True, self._key_next
                continue
            match = _STRING_BODY.match(data, i)
            k = match.end() if match else i
            if k < n and data[k] == 0x5C:  # a lone backslash ends the piece
                self._carry = data[k:]
            self._content(data[i:k], out)
            if k >= n or data[k] != 0x22:
                break
            self._end(out)
            out.append(b'"')
            self._in_string = False
            i = k + 1
        return b"".join(out)

    def _track(self, data: bytes, start: int, end: int) -> None:
        """Follow the structure between strings, to tell keys from values."""
        for match in _STRUCTURE.finditer(data, start, end):
            char = data[match.start()]
            if char in b"{[":
                self._open.append(char)
            elif char in b"}]" and self._open:
                self._open.pop()
            self._key_next = (char == 0x7B or char == 0x2C) and bool(self._open) and self._open[-1] == 0x7B

    def finish(self) -> bytes:
        """The end of the body: return what is still held (a truncated body stays truncated)."""
        out: list[bytes] = []
        if self._decoder is not None:
            self._give_back(out)
        out.append(bytes(self._raw) + self._carry)
        self._raw.clear()
        self._carry = b""
        return b"".join(out)

    def join(self, parts: list[bytes]) -> bytes:
        """The whole rewritten body: ``parts`` from :meth:`feed`, then what :meth:`finish` returns."""
        parts.append(self.finish())
        return b"".join(parts)

    @contextlib.contextmanager
    def aborting(self) -> Iterator[None]:
        """If the body cannot be read whole, delete any file begun."""
        try:
            yield
        except BaseException:
            if self._decoder is not None:
                self._decoder.abort()
                self._decoder = None
            raise

    def _content(self, raw: bytes, out: list[bytes]) -> None:
        if self._plain:
            out.append(raw)
            return
        if self._decoder is not None:
            text = _unescape(raw)
            if text is None or not self._decoder.write(text):
                self._give_back(out)
                out.append(raw)
            return
        self._raw += raw
        if len(self._raw) >= self.min_chars:
            self._decide(out)

    def _decide(self, out: list[bytes]) -> None:
        """A long string: decode it into a file if it is base64, else let it pass."""
        raw = bytes(self._raw)
        self._raw.clear()
        head = _DATA_PREFIX.match(raw[:512].replace(b"\\/", b"/"))
        prefix = head.group(0) if head else b""
        start = raw.index(b";base64,") + 8 if head else 0
        text = _unescape(raw[start:])
        if text is not None:
            try:
                decoder = _Decoder(self.spools, prefix)
            except (RuntimeError, OSError):  # call over, or no usable temp folder: keep it in memory
                pass
            else:
                if decoder.write(text):
                    self._decoder = decoder
                    return
                decoder.abort()
        self._plain = True
        out.append(raw)

    def _give_back(self, out: list[bytes]) -> None:
        """The string stopped looking like base64: emit it as text after all."""
        assert self._decoder is not None
        out.extend(self._decoder.undo())
        self._decoder = None
        self._plain = True

    def _end(self, out: list[bytes]) -> None:
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            if decoder.finish():
                out.append(decoder.prefix + decoder.token.encode("ascii"))
            else:
                out.extend(decoder.undo())
        elif not self._plain:
            out.append(bytes(self._raw))
        self._raw.clear()


def _rewriter_for(response: Any) -> Rewriter | None:
    """A rewriter for an unread JSON body inside :func:`spooling`, else None."""
    spools = _active.get()
    if spools is None or hasattr(response, "_content"):
        return None
    return Rewriter(spools) if "json" in response.headers.get("content-type", "").lower() else None


def install() -> bool:
    """Route ``httpx.Response.read``/``aread`` through :class:`Rewriter` inside :func:`spooling`; idempotent.

    :return: Whether the hook is in place (False if httpx changed shape).
    """
    try:
        import httpx
    except ImportError:  # pragma: no cover - litellm depends on httpx
        return False
    with _install_lock:
        read, aread = getattr(httpx.Response, "read", None), getattr(httpx.Response, "aread", None)
        if read is None or aread is None:
            return False
        if getattr(read, "_imagebot", False):
            return True

        def read_hooked(self: Any) -> bytes:
            rewriter = _rewriter_for(self)
            if rewriter is None:
                return read(self)
            with rewriter.aborting():
                parts = [rewriter.feed(chunk) for chunk in self.iter_bytes()]
            self._content = rewriter.join(parts)
            return self._content

        async def aread_hooked(self: Any) -> bytes:
            rewriter = _rewriter_for(self)
            if rewriter is None:
                return await aread(self)
            with rewriter.aborting():
                parts = [rewriter.feed(chunk) async for chunk in self.aiter_bytes()]
            self._content = rewriter.join(parts)
            return self._content

        read_hooked._imagebot = True  # type: ignore[attr-defined]
        httpx.Response.read = read_hooked  # type: ignore[method-assign]
        httpx.Response.aread = aread_hooked  # type: ignore[method-assign]
        return True


@contextlib.contextmanager
def spooling(enabled: bool = True) -> Iterator[Spools | None]:
    """Within the block (and threads that copy its context), spool long base64 strings.

    :param enabled: False makes this a no-op that yields None.
    :return: The block's :class:`Spools` (None when off); files not taken are deleted on exit.
    """
    if not enabled or not install():
        yield None
        return
    spools = Spools()
    token = _active.set(spools)
    try:
        yield spools
    finally:
        _active.reset(token)
        spools.close()
