"""Content Credentials (C2PA): the provider's signed record of how an image was made, read back.

Reading needs the optional ``c2pa-python`` (``pip install 'llamabot-imagebot[c2pa]'``), imported
only here and only when a file carries a manifest, so ``import llamabot`` stays cheap.
"""

from __future__ import annotations

import json
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INSTALL_HINT = "pip install 'llamabot-imagebot[c2pa]' to read and validate them"


def describe(path: Path, mime: str) -> dict[str, Any]:
    """What a file's Content Credentials say: who signed, with what, whether they validate.

    :param path: An image that carries a C2PA manifest.
    :param mime: Its MIME type.
    :return: ``claim_generator``, ``issuer``, ``ai_source_type``, ``validation`` (``Valid``,
        ``Trusted`` or ``Invalid``) and ``validation_codes``; or, without ``c2pa-python``,
        ``present`` and a ``note`` saying how to get it.
    """
    try:
        import c2pa
    except ImportError:
        return {"present": True, "note": f"This file carries Content Credentials: {INSTALL_HINT}."}
    try:
        with path.open("rb") as file, c2pa.Reader(mime, file) as reader:
            report = json.loads(reader.json())
    except Exception as exc:  # a damaged or unsupported manifest is reported, not raised
        return {"present": True, "validation": "Invalid", "error": f"{type(exc).__name__}: {exc}"}
    manifest = report.get("manifests", {}).get(report.get("active_manifest"), {})
    generators = manifest.get("claim_generator_info") or []
    generator = (
        " ".join(str(part) for part in (generators[0].get("name"), generators[0].get("version")) if part)
        if generators
        else manifest.get("claim_generator")
    )
    return {
        "present": True,
        "claim_generator": generator,
        "issuer": (manifest.get("signature_info") or {}).get("issuer"),
        "ai_source_type": _source_type(manifest),
        "validation": report.get("validation_state"),
        "validation_codes": [status.get("code") for status in report.get("validation_status") or []],
    }


def _source_type(manifest: dict[str, Any]) -> str | None:
    """The IPTC digital source type the manifest's actions declare (``trainedAlgorithmicMedia`` for AI)."""
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in (assertion.get("data") or {}).get("actions") or []:
                if action.get("digitalSourceType"):
                    return str(action["digitalSourceType"]).rsplit("/", 1)[-1]
    return None
