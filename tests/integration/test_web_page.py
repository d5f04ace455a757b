"""The archive's web page in headless Chromium (issue 19): the study list, its search,
sorting and paging, a study's series, the viewer (scrolling, window/level, zoom, the
attribute panel), pydicom's bundled colour, multi-frame and compressed files, an upload
by STOW-RS — and no patient name in the page's DOM or network payloads, no console error.
One archive and one browser for the module; see browser.py for the screenshots."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import Session, chromium, compare_screenshot, session
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from served import served_archive

from pacskit.testing.corpus import generate_corpus
from pacskit.testing.phantom import write_ct_series

BUNDLED = {"CT_small.dcm": "native CT", "SC_rgb_jpeg_dcmtk.dcm": "JPEG baseline YBR colour",
           "SC_rgb_rle_2frame.dcm": "RLE colour, 2 frames", "JPEG2000.dcm": "JPEG 2000 NM"}


@pytest.fixture(scope="module")
def archive_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("page-files")
    corpus = [item.path for item in generate_corpus(root / "corpus", patients=2, studies_per_patient=2,
                                                    series_per_study=2, instances_per_series=3, seed=5)]
    phantom = write_ct_series(root / "phantom", slices=5, size=256)
    return [*corpus, *phantom, *(Path(get_testdata_file(name)) for name in BUNDLED)]


@pytest.fixture(scope="module")
def expected(archive_files):
    """Per study: patient ID, modalities, series and instance counts, from the files."""
    studies: dict[str, dict] = {}
    for path in archive_files:
        ds = dcmread(path, stop_before_pixels=True)
        study = studies.setdefault(ds.StudyInstanceUID, {"patient": ds.PatientID, "series": set(),
                                                         "instances": 0, "modalities": set(), "names": set()})
        study["series"].add(ds.SeriesInstanceUID)
        study["instances"] += 1
        study["modalities"].add(ds.Modality)
        study["names"].add(str(ds.PatientName))
    return studies


@pytest.fixture(scope="module")
def base(tmp_path_factory, archive_files):
    with served_archive(tmp_path_factory.mktemp("page-archive"), archive_files) as archive:
        yield f"http://127.0.0.1:{archive.settings.web.port}/"


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def s(browser, base, expected):
    with session(browser, base_url=base) as current:
        yield current
        assert_no_names(current, {name for study in expected.values() for name in study["names"]} | {"Phantom^Patricia"})
        assert current.errors == []


def assert_no_names(s: Session, names: set[str]) -> None:
    """No patient name in the DOM, nor in any text/JSON response the page received."""
    forms = {form for name in names if name for form in
             (name, name.replace("^", " "), json.dumps(name)[1:-1])}
    dom = s.page.content()
    assert not [f for f in forms if f in dom]
    payloads = s.text_payloads()
    assert any("/ui/api/" in url for url, _ in payloads)
    for url, body in payloads:
        text = body.decode("utf-8", "replace")
        assert not [f for f in forms if f in text], url


def rows(s: Session) -> list[dict[str, str]]:
    s.page.wait_for_selector("table.studies tbody tr, table.studies caption")
    headers = s.page.locator("table.studies thead th").all_inner_texts()
    return [dict(zip(headers, row.locator("td").all_inner_texts(), strict=True))
            for row in s.page.locator("table.studies tbody tr").all()]


def open_list(s: Session, query: str = "") -> list[dict[str, str]]:
    s.page.goto(f"/#/{'?' + query if query else ''}")
    s.page.wait_for_function("() => document.getElementById('status').textContent.match(/ stud(y|ies)$/)")
    return rows(s)


def test_the_list_shows_every_study_with_its_counts_and_no_name_column(s, expected):
    shown = open_list(s)
    assert "Patient name" not in s.page.locator("table.studies thead").inner_text()
    assert sorted(r["Patient ID"] for r in shown) == sorted(e["patient"] for e in expected.values())
    uids = s.page.locator("table.studies tbody tr").evaluate_all("rows => rows.map(r => r.dataset.study)")
    for uid, row in zip(uids, shown, strict=True):
        assert int(row["Series"]) == len(expected[uid]["series"])
        assert int(row["Instances"]) == expected[uid]["instances"]
        assert set(row["Modalities"].split(", ")) == expected[uid]["modalities"]
    compare_screenshot(s.page, "study-list")


def test_a_filter_narrows_the_list_and_sorting_and_paging_work(s, expected):
    open_list(s)
    s.page.get_by_label("Modality").fill("CT")
    s.page.get_by_role("button", name="Search").click()
    s.page.wait_for_url("**ModalitiesInStudy=CT")
    shown = open_list(s, "ModalitiesInStudy=CT")
    assert len(shown) == sum("CT" in e["modalities"] for e in expected.values()) < len(expected)
    assert all("CT" in r["Modalities"].split(", ") for r in shown)
    assert [r["Patient ID"] for r in open_list(s, "PatientID=PHANTOM1")] == ["PHANTOM1"]
    assert open_list(s, "StudyDescription=phantom") == []
    assert [r["Patient ID"] for r in open_list(s, "StudyDescription=PHANTOM")] == ["PHANTOM1"]

    open_list(s)
    s.page.get_by_role("button", name="Instances").click()
    s.page.wait_for_url("**sort=NumberOfStudyRelatedInstances")
    counts = [int(r["Instances"]) for r in rows(s)]
    assert counts == sorted(counts) and counts[0] != counts[-1]
    s.page.get_by_role("button", name="Instances").click()
    s.page.wait_for_url("**order=desc")
    assert [int(r["Instances"]) for r in rows(s)] == sorted(counts, reverse=True)

    most = max(e["instances"] for e in expected.values())
    first_page = open_list(s, "limit=2&sort=NumberOfStudyRelatedInstances&order=desc")
    assert int(first_page[0]["Instances"]) == most, "sorted over the whole list, not within the page"
    s.page.wait_for_function("() => document.querySelector('.pager .range').textContent.includes(' of ')")
    assert s.page.locator(".pager .range").inner_text() == f"1–2 of {len(expected)}"
    dates = [r["Date"] for r in open_list(s)]
    assert dates == sorted(dates, reverse=True), "newest first by default"

    seen: list[str] = []
    page = open_list(s, "limit=3")
    while True:
        assert 1 <= len(page) <= 3
        seen += s.page.locator("table.studies tbody tr").evaluate_all("rows => rows.map(r => r.dataset.study)")
        next_button = s.page.get_by_role("button", name="Next ›")
        if next_button.is_disabled():
            break
        first = seen[-len(page)]
        next_button.click()
        s.page.wait_for_function("u => document.querySelector('table.studies tbody tr')?.dataset.study !== u", arg=first)
        page = rows(s)
    assert sorted(seen) == sorted(expected)


def open_viewer(s: Session, expected: dict, patient: str) -> str:
    open_list(s)
    study = next(uid for uid, e in expected.items() if e["patient"] == patient)
    s.page.locator(f'tr[data-study="{study}"] a').click()
    s.page.wait_for_selector(".series-card")
    assert s.page.locator(".series-card").count() == len(expected[study]["series"])
    s.page.wait_for_function("() => [...document.querySelectorAll('.series-card img')]"
                             ".every(i => i.complete && i.naturalWidth > 0)")
    s.page.locator(".series-card").first.click()
    return s.wait_shown()


def spread(image: np.ndarray) -> float:
    return float(image[..., :3].std())


def test_the_viewer_scrolls_windows_zooms_and_shows_the_attributes(s, expected):
    first = open_viewer(s, expected, "PHANTOM1")
    before = s.canvas()
    assert spread(before) > 20, "the image is blank"
    assert s.page.locator("#image-slider").get_attribute("max") == "5"
    s.page.wait_for_function("() => document.querySelector('.overlay.br').textContent && [...document"
                             ".querySelectorAll('.strip img')].every(i => i.complete && i.naturalWidth > 0)")
    compare_screenshot(s.page, "viewer")

    s.page.keyboard.press("ArrowDown")
    second = s.wait_shown(first)
    assert "window=" not in second and second.split("/instances/")[1] != first.split("/instances/")[1]
    assert (s.canvas() != before).any()
    s.page.mouse.move(600, 400)
    s.page.mouse.wheel(0, 120)
    third = s.wait_shown(second)
    assert s.page.locator("#image-slider").input_value() == "3"

    scrolled = s.canvas()
    s.page.mouse.move(600, 400)
    s.page.mouse.down(button="right")
    s.page.mouse.move(680, 360, steps=4)
    s.page.mouse.up(button="right")
    windowed = s.wait_shown(third)
    assert "window=" in windowed
    s.page.wait_for_function("() => !document.querySelector('.viewport canvas').dataset.busy")
    assert np.abs(s.canvas().astype(int) - scrolled).mean() > 2

    s.page.get_by_label("Window preset").select_option(label="Lung (-600/1500)")
    s.page.wait_for_function("() => document.querySelector('.viewport canvas').dataset.src.includes('window=-600%2C1500')")
    lung_image = s.canvas()
    s.page.locator(".viewport canvas").focus()
    s.page.keyboard.press("+")
    s.page.wait_for_function("() => document.querySelector('.overlay.bl').textContent.includes('Zoom 125%')")
    assert (s.canvas() != lung_image).any()

    s.page.keyboard.press("Shift+ArrowRight")
    s.page.wait_for_function("() => document.querySelector('.viewport canvas').dataset.src.includes('window=-600%2C1546.88')")
    assert "W 1547  L -600" in s.page.locator(".overlay.bl").inner_text()

    s.page.keyboard.press("a")
    s.page.wait_for_selector(".attrs td.kw >> text=PatientID")
    panel = s.page.locator(".attrs").inner_text()
    assert "PHANTOM1" in panel and "PatientName" not in panel
    s.page.get_by_label("Filter attributes").fill("WindowWidth")
    assert s.page.locator(".attrs tbody tr").count() == 1


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_files_render_in_the_viewer(s, name):
    ds = dcmread(get_testdata_file(name), stop_before_pixels=True)
    s.page.goto(f"/#/view/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}")
    s.wait_shown()
    image = s.canvas()
    assert spread(image) > 10, f"{BUNDLED[name]}: the image is blank"
    if ds.SamplesPerPixel == 3:
        rgb = image[..., :3].astype(int)
        assert np.abs(rgb[..., 0] - rgb[..., 1]).max() > 30, "a colour image shown grey"
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames > 1:
        shown = s.wait_shown()
        s.page.keyboard.press("End")
        s.wait_shown(shown)
        assert f"Frame {frames} / {frames}" in s.page.locator(".overlay.tl").inner_text()


def test_an_upload_is_stored_and_appears_in_the_list(s, tmp_path):
    path = write_ct_series(tmp_path, slices=1, size=32, seed=42, patient_id="UPLOADED1")[0]
    assert "UPLOADED1" not in [r["Patient ID"] for r in open_list(s)]
    s.page.set_input_files("#upload-files", str(path))
    s.page.wait_for_selector(".upload .outcome.ok >> text=1 stored")
    assert s.page.locator("progress[aria-label='Upload progress']").evaluate("p => p.value") == 1
    s.page.wait_for_function("() => document.body.innerText.includes('UPLOADED1')")
    row = next(r for r in rows(s) if r["Patient ID"] == "UPLOADED1")
    assert row["Instances"] == "1"


def test_thumbnails_at_every_level_fit_their_viewport(base, expected):
    study = next(uid for uid, e in expected.items() if e["patient"] == "PHANTOM1")
    root = f"{base}dicom-web/studies/{study}"
    series = httpx.get(f"{root}/series").json()[0]["0020000E"]["Value"][0]
    sop = httpx.get(f"{root}/series/{series}/instances").json()[0]["00080018"]["Value"][0]
    instance = f"{root}/series/{series}/instances/{sop}"
    for url in (root, f"{root}/series/{series}", instance, f"{instance}/frames/1"):
        answer = httpx.get(f"{url}/thumbnail")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg", url
        assert max(Image.open(BytesIO(answer.content)).size) == 128
    small = httpx.get(f"{instance}/thumbnail", params={"viewport": "40,20", "accept": "image/png"})
    assert Image.open(BytesIO(small.content)).size == (20, 20)
    assert httpx.get(f"{instance}/thumbnail", params={"viewport": "0,9"}).status_code == 400
    assert httpx.get(f"{instance}/frames/2/thumbnail").status_code == 404


def test_the_page_api_counts_and_never_matches_or_sorts_on_a_withheld_name(base, expected):
    """With names withheld, neither a match nor an order on them: the answers' membership or
    order would tell what the page does not show. ``/dicom-web`` is unchanged."""
    api = f"{base}ui/api/studies"
    listed = httpx.get(api, params={"limit": 500}).json()
    assert len(listed) >= len(expected)
    assert httpx.get(f"{api}/count").json() == {"count": len(listed)}
    assert httpx.get(f"{api}/count", params={"PatientID": "PHANTOM1"}).json() == {"count": 1}
    for params in ({"PatientName": "A*"}, {"00100010": "*"}, {"orderby": "PatientName"},
                   {"orderby": "StudyDate,-00100010"}, {"OtherPatientNames": "*"}):
        for url in (api, f"{api}/count"):
            response = httpx.get(url, params=params)
            assert response.status_code == 400 and "withheld" in response.text, (url, params)
    assert httpx.get(f"{base}dicom-web/studies", params={"orderby": "PatientName"}).status_code == 200
