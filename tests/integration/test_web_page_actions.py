"""The web page behind HTTP Basic with ``[web] show_patient_names`` on, and its actions
(docs/web-actions.md) from the page in headless Chromium: the ZIP download, a send to
DCMTK storescp with its progress, a delete with its confirmation, a study deleted while
it is viewed. One archive and one browser for the module."""

from __future__ import annotations

import zipfile

import httpx
import pytest
from browser import chromium, session
from pydicom import dcmread
from served import served_archive

from pacskit.settings import NodeConfig, UserConfig
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import StoreSCP
from pacskit.testing.phantom import write_ct_series

ALICE = {"username": "alice", "password": "alice-pw"}
BOB = {"username": "bob", "password": "bob-pw"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("page-actions-files")
    corpus = [item.path for item in generate_corpus(root / "corpus", patients=1, studies_per_patient=3,
                                                    series_per_study=1, instances_per_series=2, seed=9)]
    return [*write_ct_series(root / "phantom", slices=3, size=64, seed=3, patient_id="PHANTOM3"), *corpus]


@pytest.fixture(scope="module")
def served(tmp_path_factory, files):
    workdir = tmp_path_factory.mktemp("page-actions")
    with StoreSCP(workdir / "storescp") as storescp:
        users = {"alice": UserConfig(password=ALICE["password"], actions=["delete", "send"]), "bob": BOB["password"]}
        nodes = {"storescp": NodeConfig(ae_title=storescp.ae_title, host="127.0.0.1", port=storescp.port)}
        with served_archive(workdir, files, nodes=nodes, web={"users": users, "show_patient_names": True}) as archive:
            yield archive, storescp


@pytest.fixture(scope="module")
def base(served):
    return f"http://127.0.0.1:{served[0].settings.web.port}/"


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def alice(browser, base):
    with session(browser, base_url=base, http_credentials=ALICE, accept_downloads=True) as s:
        yield s
        assert s.errors == []


def studies(files) -> dict[str, list]:
    out: dict[str, list] = {}
    for path in files:
        out.setdefault(dcmread(path, stop_before_pixels=True).StudyInstanceUID, []).append(path)
    return out


def open_study(s, study: str) -> None:
    s.page.goto(f"/#/study/{study}")
    s.page.wait_for_selector(".series-card")


def test_the_page_needs_credentials_and_shows_names_when_they_are_on(base, alice):
    for path in ("", "ui/app.js", "ui/api/studies"):
        answer = httpx.get(f"{base}{path}")
        assert answer.status_code == 401 and "Basic" in answer.headers["www-authenticate"], path
    alice.page.goto("/")
    alice.page.wait_for_selector("table.studies tbody tr")
    assert "Patient name" in alice.page.locator("table.studies thead").inner_text()
    assert "Phantom, Patricia" in alice.page.locator("table.studies tbody").inner_text()
    alice.page.locator("tr", has_text="PHANTOM3").locator("a").click()
    alice.page.locator(".series-card").first.click()
    alice.wait_shown()
    alice.page.keyboard.press("a")
    alice.page.wait_for_selector(".attrs td.kw >> text=PatientName")
    assert "Phantom^Patricia" in alice.page.locator(".attrs").inner_text()
    assert any(b"Phantom^Patricia" in body for url, body in alice.text_payloads() if "/ui/api/studies?" in url)


def test_download_gives_every_stored_instance_byte_for_byte(alice, served, files):
    study, paths = next(iter(studies(files).items()))
    open_study(alice, study)
    with alice.page.expect_download() as download:
        alice.page.get_by_role("link", name="Download ZIP").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        stored = {name.rsplit("/", 1)[-1]: archive.read(name) for name in archive.namelist()}
    held = {f"{dcmread(p, stop_before_pixels=True).SOPInstanceUID}.dcm": p.read_bytes()
            for p in served[0].ingest.files.rglob("*.dcm")}
    sops = {f"{dcmread(p, stop_before_pixels=True).SOPInstanceUID}.dcm" for p in paths}
    assert stored == {name: data for name, data in held.items() if name in sops} and len(stored) == len(paths)


def test_send_reports_its_progress_and_outcome(alice, served, files):
    study, paths = next(iter(studies(files).items()))
    open_study(alice, study)
    alice.page.get_by_label("Node to send to").select_option("storescp")
    alice.page.get_by_role("button", name="Send").click()
    alice.page.wait_for_selector(".actions .outcome.ok >> text=Sent")
    assert alice.page.locator("progress[aria-label='Send progress']").evaluate("p => p.value") == 1
    received = {dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in served[1].received()}
    assert {dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in paths} <= received


def test_delete_needs_the_permission_and_a_confirmation(browser, base, alice, served, files):
    study = list(studies(files))[1]
    with session(browser, base_url=base, http_credentials=BOB) as bob:
        open_study(bob, study)
        bob.page.wait_for_selector(".actions a.button")
        assert bob.page.get_by_role("button", name="Delete study").count() == 0
        assert bob.page.get_by_role("button", name="Send").count() == 0
    before = sorted(served[0].ingest.files.rglob("*.dcm"))
    open_study(alice, study)
    alice.page.once("dialog", lambda dialog: dialog.dismiss())
    alice.page.get_by_role("button", name="Delete study").click()
    assert len(sorted(served[0].ingest.files.rglob("*.dcm"))) == len(before)
    alice.page.once("dialog", lambda dialog: dialog.accept())
    alice.page.get_by_role("button", name="Delete study").click()
    alice.page.wait_for_selector("table.studies tbody tr")
    assert alice.page.locator(f'tr[data-study="{study}"]').count() == 0
    assert alice.page.locator(".notice").inner_text() == "Deleted the study: 2 instances"
    assert len(sorted(served[0].ingest.files.rglob("*.dcm"))) == len(before) - 2


def test_a_study_deleted_while_it_is_viewed_says_so(browser, base, files):
    study = list(studies(files))[2]
    with session(browser, base_url=base, http_credentials=ALICE) as s:
        open_study(s, study)
        s.page.locator(".series-card").first.click()
        shown = s.wait_shown()
        answer = httpx.delete(f"{base}api/studies/{study}", auth=(ALICE["username"], ALICE["password"]),
                              headers={"X-Pacskit-Action": "1"})
        assert answer.status_code == 200
        s.page.mouse.move(600, 400)
        s.page.mouse.down(button="right")
        s.page.mouse.move(660, 380, steps=2)
        s.page.mouse.up(button="right")
        s.page.wait_for_selector(".viewport .message >> text=deleted")
        assert s.page.locator(".viewport canvas").get_attribute("data-src") == shown


def test_the_viewer_downloads_its_series(alice, served, files):
    study, paths = next(iter(studies(files).items()))
    ds = dcmread(paths[0], stop_before_pixels=True)
    alice.page.goto(f"/#/view/{study}/{ds.SeriesInstanceUID}")
    alice.wait_shown()
    assert alice.page.get_by_role("button", name="Delete series").count() == 1
    with alice.page.expect_download() as download:
        alice.page.get_by_role("link", name="Download series").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        assert sorted(name.rsplit("/", 1)[-1] for name in archive.namelist()) == sorted(
            f"{dcmread(p, stop_before_pixels=True).SOPInstanceUID}.dcm" for p in paths)
