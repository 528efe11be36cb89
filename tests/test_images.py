"""``--image``: URLs pass through; local files are checked and become data URIs where allowed."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.images import MAX_IMAGE_BYTES, ImageRefused, image_input, image_type

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64


@pytest.mark.parametrize(
    ("data", "kind"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp"), (b"GIF89a....", None)],
)
def test_image_type_by_magic_bytes(data: bytes, kind: str | None):
    assert image_type(data[:12]) == kind


def test_url_passes_through_for_every_provider():
    url = "https://cdn.example/first frame.png?sig=1"
    assert image_input(url, data_uri_ok=False, provider="pixazo") == url
    assert image_input(" HTTP://x.example/a.jpg ", data_uri_ok=True, provider="fal") == (
        "HTTP://x.example/a.jpg"
    )


@pytest.mark.parametrize(("data", "kind"), [(PNG, "png"), (JPEG, "jpeg"), (WEBP, "webp")])
def test_local_file_becomes_a_data_uri(tmp_path: Path, data: bytes, kind: str):
    path = tmp_path / f"frame.{kind}"
    path.write_bytes(data)
    uri = image_input(str(path), data_uri_ok=True, provider="fal")
    prefix = f"data:image/{kind};base64,"
    assert uri.startswith(prefix)
    assert base64.b64decode(uri.removeprefix(prefix)) == data


def test_local_file_refused_where_only_urls_are_taken(tmp_path: Path):
    path = tmp_path / "frame.png"
    path.write_bytes(PNG)
    with pytest.raises(ImageRefused) as caught:
        image_input(str(path), data_uri_ok=False, provider="pixazo")
    assert "pixazo takes images only as URLs" in caught.value.user_message
    assert "https://" in caught.value.user_message


def test_missing_file_directory_wrong_type_and_too_big(tmp_path: Path):
    with pytest.raises(ImageRefused, match="does not exist"):
        image_input(str(tmp_path / "nope.png"), data_uri_ok=True, provider="fal")
    with pytest.raises(ImageRefused, match="not a file"):
        image_input(str(tmp_path), data_uri_ok=True, provider="fal")
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 64)
    with pytest.raises(ImageRefused, match="not a PNG, JPEG or WebP"):
        image_input(str(gif), data_uri_ok=True, provider="fal")
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\x00" * MAX_IMAGE_BYTES)
    with pytest.raises(ImageRefused, match="the limit is 10 MB"):
        image_input(str(big), data_uri_ok=True, provider="fal")
    exact = tmp_path / "exact.png"
    exact.write_bytes(PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG)))
    assert image_input(str(exact), data_uri_ok=True, provider="fal").startswith("data:image/png")
