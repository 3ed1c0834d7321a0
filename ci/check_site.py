"""Every link in the built docs site works when the site is opened from files (no server).

Usage: python ci/check_site.py SITE_DIR. Exits 1 listing each broken link: one that names a
folder (a file browser shows a listing there, not the page) or a file that is not there.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
from pathlib import Path

LINK = re.compile(r"""(?:href|src)=["']([^"']+)["']""")


def broken_links(site: Path) -> list[str]:
    broken = []
    for page in site.rglob("*.html"):
        if page.name == "404.html":  # served by a web server only, with absolute links by design
            continue
        for target in LINK.findall(page.read_text(encoding="utf-8", errors="replace")):
            parts = urllib.parse.urlsplit(target)
            if parts.scheme or parts.netloc or target.startswith(("#", "mailto:", "data:", "javascript:")):
                continue
            if not parts.path:
                continue
            resolved = (page.parent / urllib.parse.unquote(parts.path)).resolve()
            if not resolved.is_file():
                broken.append(f"{page.relative_to(site)}: {target}")
    return broken


if __name__ == "__main__":
    found = broken_links(Path(sys.argv[1]))
    for line in found:
        print(line, file=sys.stderr)
    sys.exit(1 if found else 0)
