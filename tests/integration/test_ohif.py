"""`pacskit serve --ohif DIR` (issue 19's optional item) with the real OHIF Viewer build
(npm ``@ohif/app``, pinned and installed by scripts/install-peers.sh) in headless Chromium:
its study list and one viewport render from pacskit's DICOMweb on OHIF's own origin,
cross-origin isolated, with no patient name in what it is sent; the built-in page links
each study to it."""

from __future__ import annotations

import time
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import ARTEFACTS, CHROMIUM
from PIL import Image
from playwright.sync_api import sync_playwright
from pydicom import dcmread
from served import served_archive

from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import free_port
from pacskit.testing.phantom import write_ct_series
from pacskit.web.ohif import check_build

OHIF = Path(__file__).parents[2] / ".peers" / "ohif" / "3.13.2" / "dist"
NAMES = ("Phantom^Patricia",)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ohif-files")
    corpus = [item.path for item in generate_corpus(root / "corpus", patients=1, studies_per_patient=2,
                                                    series_per_study=1, instances_per_series=2, seed=9)]
    return [*write_ct_series(root / "phantom", slices=5, size=256), *corpus]


@pytest.fixture(scope="module")
def served(tmp_path_factory, files):
    with served_archive(tmp_path_factory.mktemp("ohif-archive"), files,
                        web={"ohif_dir": OHIF, "ohif_port": free_port()}) as archive:
        yield archive


def names_in(files: list[Path]) -> set[str]:
    found = {str(dcmread(f, stop_before_pixels=True).PatientName) for f in files} | set(NAMES)
    return {form for name in found if name for form in (name, name.replace("^", " "))}


def test_the_viewer_origin_is_isolated_and_answers_dicomweb_without_names(served, files):
    viewer = f"http://127.0.0.1:{served.settings.web.viewer_port}"
    index = httpx.get(f"{viewer}/")
    assert index.status_code == 200 and "OHIF" in index.text
    assert index.headers["cross-origin-opener-policy"] == "same-origin"
    assert index.headers["cross-origin-embedder-policy"] == "require-corp"
    assert httpx.get(f"{viewer}/viewer?StudyInstanceUIDs=1.2.3").text == index.text
    config = httpx.get(f"{viewer}/app-config.js").text
    assert '"qidoRoot": "/dicom-web"' in config and "cloudfront" not in config
    for path in ("/..%2F..%2F..%2Fetc%2Fpasswd", "/../../etc/passwd", "/%2e%2e/app-config.js"):
        assert "root:" not in httpx.get(f"{viewer}{path}").text
    studies = httpx.get(f"{viewer}/dicom-web/studies")
    assert studies.status_code == 200 and studies.headers["cross-origin-embedder-policy"] == "require-corp"
    assert len(studies.json()) == 3 and not any(n in studies.text for n in names_in(files))
    assert "00100010" in httpx.get(f"http://127.0.0.1:{served.settings.web.port}/dicom-web/studies").text
    assert httpx.get(f"{viewer}/dicom-web/studies", params={"PatientName": "P*"}).status_code == 400
    assert httpx.get(f"{viewer}/dicom-web/studies/9.9.9/metadata").status_code == 404


def test_a_directory_that_is_not_an_ohif_build_is_refused(tmp_path):
    from pacskit.errors import ConfigError

    (tmp_path / "index.html").write_text("<html></html>")
    with pytest.raises(ConfigError, match="not an unpacked OHIF Viewer build"):
        check_build(tmp_path)
    assert check_build(OHIF) == OHIF.resolve()


def viewport_spread(page) -> float:
    shot = page.locator("canvas").first.screenshot()
    return float(np.asarray(Image.open(BytesIO(shot)).convert("L")).std())


def test_ohif_lists_the_studies_and_renders_a_viewport_from_pacskit(served, files):
    viewer = f"http://127.0.0.1:{served.settings.web.viewer_port}"
    page_url = f"http://127.0.0.1:{served.settings.web.port}/"
    phantom = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    received: list[tuple[str, bytes]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--enable-unsafe-swiftshader"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("response", lambda r: received.append((r.url, r.body())) if "/dicom-web/" in r.url
                    and "json" in r.headers.get("content-type", "") else None)
            page.goto(f"{viewer}/")
            page.wait_for_selector("text=PHANTOM THORAX")
            assert page.evaluate("crossOriginIsolated") is True
            assert page.get_by_text("1-3 of 3").count() == 1

            page.goto(f"{viewer}/viewer?StudyInstanceUIDs={phantom}")
            page.wait_for_selector("canvas")
            deadline = time.monotonic() + 30
            while viewport_spread(page) < 10 and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            assert viewport_spread(page) >= 10, "the viewport shows the phantom, not a blank canvas"
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTEFACTS / "ohif-viewer.png"))
            assert errors == []

            page.goto(f"{page_url}#/study/{phantom}")
            link = page.get_by_role("link", name="Open in OHIF")
            assert link.get_attribute("href") == f"{viewer}/viewer?StudyInstanceUIDs={phantom}"
            dom = page.content()
        finally:
            browser.close()
    names = names_in(files)
    assert received and not [url for url, body in received if any(n.encode() in body for n in names)]
    assert not any(n in dom for n in names)
