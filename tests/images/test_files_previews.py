"""/files/<path> (Range, ETag, Last-Modified, conditional requests, X-Accel-Redirect) and
/previews/... (zscale PNGs, cached), both as invisible as the rows behind them."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import requests
from images_seed import BASE
from PIL import Image
from served_app import served_app

from skyvault.config import settings
from skyvault.server.images.files import ACCEL_PREFIX_CONFIG


def file_url(base: str, world, name: str) -> str:
    return f"{base}/files/{world.files[name].path}"


def test_a_file_streams_with_its_metadata(live_server, world) -> None:
    content = world.path("sci_public").read_bytes()
    response = requests.get(file_url(live_server, world, "sci_public"), timeout=60)
    assert response.status_code == 200 and response.content == content
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["Content-Type"] == "application/fits"
    assert response.headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert "Last-Modified" in response.headers
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Date"].count("GMT") == 1  # one Date header, not two merged
    head = requests.head(file_url(live_server, world, "sci_public"), timeout=60)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(content))


def test_ranges_and_conditional_requests(live_server, world) -> None:
    url = file_url(live_server, world, "diff_sci_public")
    content = world.path("diff_sci_public").read_bytes()
    part = requests.get(url, headers={"Range": "bytes=2880-5759"}, timeout=60)
    assert part.status_code == 206 and part.content == content[2880:5760]
    assert part.headers["Content-Range"] == f"bytes 2880-5759/{len(content)}"
    tail = requests.get(url, headers={"Range": "bytes=-100"}, timeout=60)
    assert tail.status_code == 206 and tail.content == content[-100:]
    beyond = requests.get(url, headers={"Range": f"bytes={len(content) + 10}-"}, timeout=60)
    assert beyond.status_code == 416
    etag = requests.head(url, timeout=60).headers["ETag"]
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=60).status_code == 304
    stale = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=60)
    assert stale.status_code == 200 and stale.content == content
    fresh = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=60)
    assert fresh.status_code == 206 and fresh.content == content[:10]


def test_embargoed_files_are_indistinguishable_from_missing_ones(live_server, world) -> None:
    url = file_url(live_server, world, "sci_embargoed")
    hidden = requests.get(url, timeout=60)
    missing = requests.get(url.replace("sci_embargoed", "sci_nonexistent"), timeout=60)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    member = {"Authorization": f"Bearer {world.member_token}"}
    allowed = requests.get(url, headers=member, timeout=60)
    assert allowed.status_code == 200
    assert allowed.content == world.path("sci_embargoed").read_bytes()
    assert "private" in allowed.headers["Cache-Control"]


@pytest.mark.parametrize("path", ["../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd",
                                  "imagetest/sci/%2e%2e/sci/sci_public_sciimg.fits",
                                  "imagetest/sci"])
def test_only_paths_of_archived_files_are_served(live_server, path) -> None:
    assert requests.get(f"{live_server}/files/{path}", timeout=60).status_code == 404


def test_behind_nginx_files_are_handed_over_by_x_accel_redirect(world) -> None:
    with served_app({ACCEL_PREFIX_CONFIG: "/_protected_files/"}) as base:
        response = requests.get(file_url(base, world, "sci_public"), timeout=60)
        assert response.status_code == 200 and response.content == b""
        assert response.headers["X-Accel-Redirect"] == (
            "/_protected_files/" + world.files["sci_public"].path)
        assert response.headers["Content-Type"] == "application/fits"
        hidden = requests.get(file_url(base, world, "sci_embargoed"), timeout=60)
        assert hidden.status_code == 404 and "X-Accel-Redirect" not in hidden.headers


def test_the_x_accel_prefix_is_a_setting() -> None:
    environment = {**os.environ, "SKYVAULT_X_ACCEL_PREFIX": "/_protected_files"}
    probe = ("from skyvault.config import settings\n"
             "print(settings().x_accel_prefix, settings().releases_root.name)\n")
    found = subprocess.run([sys.executable, "-c", probe], env=environment, check=True,
                           capture_output=True, text=True).stdout.split()
    assert found == ["/_protected_files/", "releases"]


def preview(base: str, collection: str, image_id: int, size: str = "small", headers=None):
    return requests.get(f"{base}/previews/{collection}/{image_id}.png", params={"size": size},
                        headers=headers, timeout=60)


def test_previews_are_zscaled_pngs_cached_on_disk(live_server, world) -> None:
    response = preview(live_server, "sci", world.ids["sci_public"])
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "L" and max(image.size) <= 256
    assert image.size == (240, 200)  # small images are not enlarged
    assert len(np.unique(np.asarray(image))) > 50  # stretched, not flat
    cached = list((settings().cache_root / "previews" / "small").rglob("*.png"))
    assert any(p.read_bytes() == response.content for p in cached)
    again = preview(live_server, "sci", world.ids["sci_public"],
                    headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    compressed = preview(live_server, "diff", world.ids["diff_sci_public"], "large")
    assert Image.open(io.BytesIO(compressed.content)).size == (240, 200)


def test_large_images_shrink_to_the_preview_size(live_server, world) -> None:
    thin = preview(live_server, "sci", world.ids["sci_thin"])  # 1600 x 20 pixels
    width, height = Image.open(io.BytesIO(thin.content)).size
    assert width <= 256 and height >= 1


def test_previews_of_embargoed_images_are_as_invisible_as_the_images(live_server,
                                                                     world) -> None:
    hidden = preview(live_server, "sci", world.ids["sci_embargoed"])
    missing = preview(live_server, "sci", BASE + 4 * 100_000 + 99_999)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    member = {"Authorization": f"Bearer {world.member_token}"}
    assert preview(live_server, "sci", world.ids["sci_embargoed"],
                   headers=member).status_code == 200
    # A cached preview does not leak either: asking again anonymously is still 404.
    assert preview(live_server, "sci", world.ids["sci_embargoed"]).status_code == 404


def test_bad_preview_requests(live_server, world) -> None:
    assert preview(live_server, "sci", world.ids["sci_public"], "huge").status_code == 400
    assert preview(live_server, "nope", 1).status_code == 404
