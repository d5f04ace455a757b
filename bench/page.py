"""The web page (issue 19) measured in headless Chromium: the first page of a 10,000-study
list, the first image of a 512×512 series, and scrolling through that series. Beside it,
as the reference, the same browser fetching the same resources from Orthanc's DICOMweb
plugin holding the same files: the first 26 studies by QIDO-RS and the first instance's
``/rendered`` — the data alone, where pacskit's figure is the whole page (its HTML,
script, searches and drawing). Best of ``repeat``, a fresh browser context each. The
list's first page is measured again while four DCMTK ``storescu`` send 2,000 more
instances into the archive (the median of the loads made during the sending).

    python -m bench --only page
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from bench.archive import ARCHIVE_AET, ingest, pacskit_serve
from bench.corpora import Corpus, make
from pacskit.testing.peers import Orthanc, free_port

CHROMIUM = "/usr/bin/chromium"
STUDIES = 10_000
SCROLLED = 40


@dataclass(frozen=True)
class PageTimes:
    tool: str
    first_page_ms: float
    first_image_ms: float
    images_per_second: float | None
    first_page_while_storing_ms: float | None = None


def page_runs(cache: Path, root: Path, repeat: int) -> tuple[Corpus, list[PageTimes]]:
    """The list corpus and (Orthanc reference, pacskit page) times."""
    listing = make(cache, "page", instances=STUDIES, series=1, rows=16, patients=STUDIES // 4, studies=4)
    large = make(cache, "large", instances=100, series=1, rows=512)
    arriving = make(cache, "small", instances=2000, series=4, rows=64)
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        try:
            with Orthanc(root / "orthanc-page", ae_title="ORTHANC") as orthanc:
                for corpus in (listing, large):
                    ingest(corpus, orthanc.ae_title, orthanc.port, 4)
                results.append(_orthanc(browser, orthanc.dicomweb_url, large, repeat))
            http_port = free_port()
            with pacskit_serve(root / "pacskit-page", fsync=False, http_port=http_port) as port:
                for corpus in (listing, large):
                    ingest(corpus, ARCHIVE_AET, port, 4)
                times = _pacskit(browser, f"http://127.0.0.1:{http_port}", large, repeat)
                sender = threading.Thread(target=ingest, args=(arriving, ARCHIVE_AET, port, 4))
                sender.start()
                during = []
                while sender.is_alive() or not during:
                    during.append(_first_page(browser, f"http://127.0.0.1:{http_port}"))
                sender.join()
                results.append(replace(times, first_page_while_storing_ms=statistics.median(during)))
        finally:
            browser.close()
    return listing, results


def _first(url: str, study: str) -> tuple[str, str]:
    """(series UID, first instance UID by Instance Number) of ``study``."""
    accept = {"Accept": "application/dicom+json"}
    series = httpx.get(f"{url}/studies/{study}/series", headers=accept, timeout=60).json()[0]["0020000E"]["Value"][0]
    instances = httpx.get(f"{url}/studies/{study}/series/{series}/instances", headers=accept, timeout=60).json()
    first = min(instances, key=lambda ds: int(ds.get("00200013", {}).get("Value", [0])[0]))
    return series, first["00080018"]["Value"][0]


def _orthanc(browser: Browser, url: str, large: Corpus, repeat: int) -> PageTimes:
    series, sop = _first(url, large.study_uid)
    rendered = f"{url}/studies/{large.study_uid}/series/{series}/instances/{sop}/rendered"
    timing = """async (u) => { const t = performance.now(); const r = await fetch(u, {headers: {Accept: '%s'}});
                await r.arrayBuffer(); return performance.now() - t; }"""
    lists, images = [], []
    for _ in range(repeat):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url.rsplit('/', 1)[0]}/system")
        lists.append(page.evaluate(timing % "application/dicom+json", f"{url}/studies?limit=26&offset=0"))
        images.append(page.evaluate(timing % "image/png", rendered))
        context.close()
    return PageTimes("Orthanc DICOMweb (data only)", min(lists), min(images), None)


def _pacskit(browser: Browser, base: str, large: Corpus, repeat: int) -> PageTimes:
    series, _ = _first(f"{base}/dicom-web", large.study_uid)
    lists, images, rates = [], [], []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1200, "height": 720}, bypass_csp=True)
        page = context.new_page()
        lists.append(_load_list(page, base))
        started = page.evaluate(f"() => {{ const t = performance.now(); location.hash = '#/view/{large.study_uid}/{series}';"
                                " return t; }")
        page.wait_for_function("() => document.querySelector('.viewport canvas')?.dataset.src")
        images.append(page.evaluate("() => performance.now()") - started)
        page.locator(".viewport canvas").focus()
        t0 = page.evaluate("() => performance.now()")
        for n in range(2, SCROLLED + 2):
            page.keyboard.press("ArrowDown")
            page.wait_for_function("n => document.getElementById('image-slider').value == n && "
                                   "!document.querySelector('.viewport canvas').dataset.busy", arg=n)
        rates.append(SCROLLED / ((page.evaluate("() => performance.now()") - t0) / 1000))
        context.close()
    return PageTimes("pacskit page (whole page)", min(lists), min(images), max(rates))


def _load_list(page: Page, base: str) -> float:
    """ms from navigation to the list's rows on screen."""
    page.goto(f"{base}/")
    page.wait_for_selector("table.studies tbody tr")
    return page.evaluate("() => performance.now()")


def _first_page(browser: Browser, base: str) -> float:
    context = browser.new_context(viewport={"width": 1200, "height": 720})
    try:
        return _load_list(context.new_page(), base)
    finally:
        context.close()


def report(listing: Corpus, results: list[PageTimes]) -> None:
    print(f"\nThe web page in Chromium: the first page of {listing.count} studies, the first 512×512 image, "
          f"scrolling {SCROLLED} images")
    print(f"  {'':<32}{'first page':>12}{'first image':>13}{'images/s':>10}   (ms)")
    for r in results:
        rate = f"{r.images_per_second:>10.1f}" if r.images_per_second else f"{'':>10}"
        print(f"  {r.tool:<32}{r.first_page_ms:>12.0f}{r.first_image_ms:>13.0f}{rate}")
    ref, ours = results
    if ours.first_page_while_storing_ms is not None:
        print(f"  {'pacskit, while 4 storescu send':<32}{ours.first_page_while_storing_ms:>12.0f}")
    print(f"  ratio pacskit page / Orthanc data: first page {ours.first_page_ms / ref.first_page_ms:.1f}×, "
          f"first image {ours.first_image_ms / ref.first_image_ms:.1f}×")
