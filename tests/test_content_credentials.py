"""The provider's Content Credentials (C2PA) survive every save path, and are shown.

Images are signed here with a throwaway certificate chain the tests make (offline, no time
stamp), and checked with the official c2pa-python library; ``tests/data/c2pa/C.jpg`` is a real
signed sample from c2pa-python's own fixtures.
"""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import llamabot as lmb
from llamabot_imagebot._provenance import content_credentials
from tests.fakes import make_image

c2pa = pytest.importorskip("c2pa")
SAMPLE = Path(__file__).parent / "data" / "c2pa" / "C.jpg"
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@pytest.fixture(scope="module")
def signer():
    """A C2PA signer with an ES256 certificate chain made for this test run (a root and a signer)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llamabot-imagebot tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, common),
            ]
        )

    def usage(sign: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(
            [
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "encipher_only",
                "decipher_only",
            ],
            False,
        )
        return x509.KeyUsage(digital_signature=sign, key_cert_sign=not sign, crl_sign=not sign, **flags)

    def certificate(subject, issuer, public_key, signing_key, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(usage(sign=not ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
        return builder.sign(signing_key, hashes.SHA256())

    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = certificate(name("Test Root"), name("Test Root"), root_key.public_key(), root_key, ca=True)
    leaf = certificate(name("Test Provider"), root.subject, key.public_key(), root_key, ca=False)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, root))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    info = c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=private, ta_url=None)
    return c2pa.Signer.from_info(info)


def sign(signer, fmt: str) -> bytes:
    """A small image in ``fmt``, signed as an AI provider would sign it."""
    manifest = {
        "claim_generator_info": [{"name": "fake-image-provider", "version": "1.0"}],
        "format": FORMATS[fmt],
        "title": "generated",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": AI}]}}
        ],
    }
    signed = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, FORMATS[fmt], io.BytesIO(make_image(fmt, (24, 16))), signed)
    return signed.getvalue()


def validation(path: Path) -> str:
    with path.open("rb") as file, c2pa.Reader(FORMATS_BY_SUFFIX[path.suffix], file) as reader:
        return json.loads(reader.json())["validation_state"]


FORMATS_BY_SUFFIX = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif"}


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("metadata", [True, False])
def test_signed_images_stay_valid_when_saved(provider, signer, fmt, metadata):
    """Every raster format a provider signs (PNG, JPEG, WEBP, GIF) still validates after saving, metadata on or off."""
    signed = sign(signer, fmt)
    provider.gpt_image([signed])
    bot = lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test", imagebot_metadata=metadata)
    path = bot("A red fox")
    assert path.read_bytes() == signed  # the manifest's hard binding covers these exact bytes
    assert validation(path) == "Valid"
    info = lmb.image_info(path)
    credentials = info["content_credentials"]
    assert credentials["validation"] == "Valid" and credentials["ai_source_type"] == "trainedAlgorithmicMedia"
    assert credentials["claim_generator"] == "fake-image-provider 1.0"
    assert credentials["issuer"] == "llamabot-imagebot tests"
    if metadata:  # our record goes beside the file, not into it
        assert info["prompt"] == "A red fox" and Path(f"{path}.json").is_file()
    else:
        assert "prompt" not in info and not Path(f"{path}.json").exists()


def test_converting_a_signed_image_warns_that_credentials_are_dropped(provider, signer):
    """Asking for another format by extension converts with Pillow and says the credentials are gone."""
    provider.gpt_image([sign(signer, "PNG")])
    bot = lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test")
    with pytest.warns(lmb.ContentCredentialsWarning, match="drops the provider's Content Credentials"):
        path = bot("A red fox", save_path="fox.jpg")
    assert path.read_bytes()[:3] == b"\xff\xd8\xff" and "content_credentials" not in (lmb.image_info(path) or {})


def test_real_signed_sample_survives_and_info_prints_both_records(provider, capsys):
    """c2pa-python's own signed sample, served by URL and saved with metadata: valid, and `imagebot info` shows both."""
    sample = SAMPLE.read_bytes()
    url = provider.file("C.jpg", sample, content_type="image/jpeg")
    provider.json_route("/images/generations", {"created": 1, "data": [{"url": url}]})
    bot = lmb.ImageBot(api_base=provider.base, api_key="sk-test", imagebot_metadata=True)
    path = bot("A sample")
    assert path.read_bytes() == sample and validation(path) == "Valid"
    from llamabot_imagebot.cli import main

    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ImageBot record (unsigned):" in out and "prompt: A sample" in out
    assert "Content Credentials (signed by the provider):" in out and "validation: Valid" in out


def test_info_without_the_extra_says_how_to_get_it(provider, signer, monkeypatch):
    """Without c2pa-python, image_info says the file carries credentials and how to read them."""
    import sys

    provider.gpt_image([sign(signer, "PNG")])
    path = lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test")("A red fox")
    monkeypatch.setitem(sys.modules, "c2pa", None)  # as if the extra were not installed
    credentials = lmb.image_info(path)["content_credentials"]
    assert credentials["present"] is True and "llamabot-imagebot[c2pa]" in credentials["note"]


@given(
    prefix=st.sampled_from([b"GIF89a", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"RIFF\x00\x00\x00\x00WEBP"]),
    body=st.binary(max_size=300),
)
def test_the_manifest_sniff_never_raises_on_damaged_files(prefix, body):
    """A truncated or hostile header is read as "no manifest", never an exception or a hang."""
    data = prefix + body
    for mime in FORMATS.values():
        assert content_credentials(data, mime) in (True, False)


def test_a_gif_manifest_is_found_by_its_application_extension(signer):
    """The sniff finds GIF's ``C2PA_GIF`` block and ignores other application extensions."""
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # an animation's application extension

    def after_colour_table(gif: bytes, block: bytes) -> bytes:
        start = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
        return gif[:start] + block + gif[start:]

    signed, plain = sign(signer, "GIF"), make_image("GIF")
    assert Image.open(io.BytesIO(after_colour_table(plain, loop))).size == (8, 6)  # still well-formed
    assert content_credentials(signed, "image/gif")
    assert content_credentials(after_colour_table(signed, loop), "image/gif")  # found past another block
    assert not content_credentials(plain, "image/gif")
    assert not content_credentials(after_colour_table(plain, loop), "image/gif")
