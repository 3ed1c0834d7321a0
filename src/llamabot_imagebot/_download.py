"""Downloading an image the provider gave by URL: http(s) only, redirects checked, size and time bounded."""

from __future__ import annotations

import errno
import time
import urllib.parse

from llamabot_imagebot._exceptions import ImageDownloadError
from llamabot_imagebot._formats import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, SNIFF_BYTES, require_complete, require_image
from llamabot_imagebot._redact import redact_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

_CHUNK = 1 << 16
_MAX_REDIRECTS = 5


def _check_scheme(url: str) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        msg = f"Refusing to fetch an image from a {scheme or 'relative'}: URL; only http and https are fetched."
        raise ImageDownloadError(msg)


def _remaining(deadline: float | None, timeout: float, url: str) -> float:
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        msg = f"Timed out downloading the generated image from {redact_url(url)}; raise `timeout` to wait longer."
        raise ImageDownloadError(errno.ETIMEDOUT, msg)
    return min(timeout, left)


def stream_url(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: float | None = None,
) -> Iterator[bytes]:
    """Yield an image URL's body in chunks: http(s) only, redirects checked, size capped.

    :param url: The image URL.
    :param timeout: Seconds to wait for the server at each step.
    :param max_bytes: Largest body accepted.
    :param deadline: A ``time.monotonic()`` instant by which the download must end.
    :return: An iterator over the body's chunks.
    :raises ImageDownloadError: On a refused scheme, HTTP error, oversize body,
        network failure or timeout.
    """
    import requests
    import urllib3

    try:
        for _ in range(_MAX_REDIRECTS + 1):
            _check_scheme(url)
            response = requests.get(url, stream=True, allow_redirects=False, timeout=_remaining(deadline, timeout, url))
            if not response.is_redirect:
                break
            response.close()
            url = urllib.parse.urljoin(url, response.headers["location"])
        else:
            msg = f"Too many redirects fetching the generated image from {redact_url(url)}."
            raise ImageDownloadError(msg)
        with response:
            if response.status_code >= 400:
                msg = (
                    f"Downloading the generated image from {redact_url(url)} failed with HTTP "
                    f"{response.status_code} {response.reason}. Result URLs expire (OpenAI's after "
                    "60 minutes, Azure's after 24 hours): generate again and save promptly."
                )
                raise ImageDownloadError(msg)
            declared = response.headers.get("Content-Length", "")
            if isinstance(declared, str) and declared.isdigit() and int(declared) > max_bytes:
                raise ImageDownloadError(_too_large(url, max_bytes))
            total = 0
            # read1 returns whatever has arrived (at least a byte), so the deadline is checked
            # however slowly the server sends; iter_content would wait for whole 64 KiB chunks.
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                total += len(chunk)
                if total > max_bytes:
                    raise ImageDownloadError(_too_large(url, max_bytes))
                _remaining(deadline, timeout, url)
                yield chunk
            if isinstance(declared, str) and declared.isdigit() and total != int(declared):
                msg = (
                    f"The download from {redact_url(url)} ended after {total:,} bytes, but the server "
                    f"announced {int(declared):,}; nothing was saved. Generate the image again."
                )
                raise ImageDownloadError(msg)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        msg = f"Could not download the generated image from {redact_url(url)}: {type(exc).__name__}."
        raise ImageDownloadError(msg) from exc


def _too_large(url: str, max_bytes: int) -> str:
    return (
        f"The image at {redact_url(url)} is larger than the {max_bytes:,}-byte limit; "
        "raise ImageBot.max_image_bytes if you expect images this large."
    )


def fetch_image(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: float | None = None,
    cancel: threading.Event | None = None,
) -> bytes:
    """Download an image URL into memory (size and time capped), refusing what is not a whole image.

    :param url: The image URL.
    :param timeout: Seconds to wait for the server at each step.
    :param max_bytes: Largest body accepted.
    :param deadline: A ``time.monotonic()`` instant by which the download must end.
    :param cancel: When set, the download stops (``KeyboardInterrupt``).
    :return: The image bytes.
    :raises InvalidImageError: If the body is not an image (an error page served as 200), or is cut short.
    """
    chunks = []
    for chunk in stream_url(url, timeout=timeout, max_bytes=max_bytes, deadline=deadline):
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        chunks.append(chunk)
    data = b"".join(chunks)
    mime = require_image(data[:SNIFF_BYTES], "The downloaded image")
    require_complete(data[:SNIFF_BYTES], data[-16:], len(data), mime)
    return data
