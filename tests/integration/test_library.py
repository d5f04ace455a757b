"""The typed library calls against Orthanc and `pacskit serve`, over DIMSE and DICOMweb,
and on the local archive and a folder: what a user of the notes' API checks."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import date

import pytest
from pydicom import dcmread
from served import CLIENT_NODES, dimse_node, served_archive, web_url

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.errors import MoveDestinationUnknown
from pacskit.level_queries import InstanceQuery, PatientQuery, SeriesQuery, StudyQuery
from pacskit.models import RetrieveProgress
from pacskit.privacy import PATIENT_NAME_KEYWORDS
from pacskit.results import StudyResult
from pacskit.settings import ArchiveSettings


@pytest.fixture(scope="module")
def archive(tmp_path_factory, corpus):
    with served_archive(tmp_path_factory.mktemp("library"), [c.path for c in corpus],
                        nodes=CLIENT_NODES) as served:
        yield served


KINDS = ["orthanc-dimse", "orthanc-web", "serve-dimse", "serve-web", "archive", "folder"]


@pytest.fixture(params=KINDS)
def place(request, orthanc, archive, corpus_dir):
    """A client, and each kind of node holding the corpus."""
    return client_and_node(request.param, orthanc, archive, corpus_dir)


@pytest.fixture(params=[k for k in KINDS if not k.endswith("-web")])
def patient_place(request, orthanc, archive, corpus_dir):
    """The kinds of node with a PATIENT level (QIDO-RS has none, PS3.18 10.6)."""
    return client_and_node(request.param, orthanc, archive, corpus_dir)


def client_and_node(kind, orthanc, archive, corpus_dir):
    settings = Settings(archive=ArchiveSettings(data_dir=archive.settings.archive.data_dir))
    node = {
        "orthanc-dimse": lambda: Node(ae_title=orthanc.ae_title, host="127.0.0.1", port=orthanc.port),
        "orthanc-web": lambda: orthanc.dicomweb_url,
        "serve-dimse": lambda: dimse_node(archive),
        "serve-web": lambda: web_url(archive),
        "archive": lambda: "archive",
        "folder": lambda: str(corpus_dir),
    }[kind]()
    return Client(settings), node


def first_patient(corpus):
    return [c for c in corpus if c.patient_id == corpus[0].patient_id]


def test_find_studies_of_a_patient(place, corpus):
    client, node = place
    mine = first_patient(corpus)
    studies = client.find_studies(node, StudyQuery(patient_id=corpus[0].patient_id))
    assert {s.study_instance_uid for s in studies} == {c.study_uid for c in mine}
    study = next(s for s in studies if s.study_instance_uid == corpus[0].study_uid)
    assert isinstance(study, StudyResult)
    assert study.study_date == date(int(corpus[0].study_date[:4]), int(corpus[0].study_date[4:6]),
                                    int(corpus[0].study_date[6:]))
    assert study.patient_id == corpus[0].patient_id
    assert study.number_of_study_related_instances in (None, 6)
    dumped = json.loads(study.model_dump_json())
    assert dumped["study_instance_uid"] == corpus[0].study_uid
    assert not set(dumped) & {"patient_name", "other_patient_names"}
    assert not any(k in study.dataset for k in PATIENT_NAME_KEYWORDS)
    assert str(dcmread(corpus[0].path).PatientName) not in study.model_dump_json()


def test_find_patients(patient_place, corpus):
    client, node = patient_place
    patients = client.find_patients(node, PatientQuery(patient_id=corpus[0].patient_id))
    assert [p.patient_id for p in patients] == [corpus[0].patient_id]


def test_find_series_and_instances(place, corpus):
    client, node = place
    study = corpus[0].study_uid
    series = client.find_series(node, SeriesQuery(study_instance_uid=study))
    expected = {c.series_uid: c for c in corpus if c.study_uid == study}
    assert {s.series_instance_uid for s in series} == set(expected)
    assert {s.modality for s in series} == {c.modality for c in expected.values()}
    assert all(isinstance(s.series_number, int) for s in series)
    instances = client.find_instances(node, InstanceQuery(study_instance_uid=study,
                                                          series_instance_uid=corpus[0].series_uid))
    assert {i.sop_instance_uid for i in instances} == {c.sop_instance_uid for c in corpus
                                                       if c.series_uid == corpus[0].series_uid}
    assert sorted(i.instance_number for i in instances) == [1, 2, 3]


def test_get_study_to_disk_and_to_memory(place, corpus, tmp_path):
    client, node = place
    study = [c for c in corpus if c.study_uid == corpus[0].study_uid]
    on_disk = client.get_study(node, corpus[0].study_uid, tmp_path)
    assert (on_disk.status, on_disk.remaining, on_disk.failed) == ("success", 0, 0)
    assert on_disk.received == len(study)
    assert sorted(p.name for p in tmp_path.rglob("*.dcm")) == sorted(f"{c.sop_instance_uid}.dcm" for c in study)
    assert json.loads(on_disk.model_dump_json())["files"]
    in_memory = client.get_series(node, corpus[0].study_uid, corpus[0].series_uid)
    uids = {c.sop_instance_uid for c in study if c.series_uid == corpus[0].series_uid}
    assert {ds.SOPInstanceUID for ds in in_memory.instances} == uids
    assert all(not ds.get("PatientName") for ds in in_memory.instances)
    assert set(json.loads(in_memory.model_dump_json())["instances"]) == uids


def test_get_instances(place, corpus):
    client, node = place
    wanted = [c.sop_instance_uid for c in corpus if c.series_uid == corpus[0].series_uid][:2]
    result = client.get_instances(node, corpus[0].study_uid, corpus[0].series_uid, wanted)
    assert sorted(ds.SOPInstanceUID for ds in result.instances) == sorted(wanted)


def test_move_study_and_series_to_a_third_party(orthanc, storescp, corpus):
    orthanc.add_modality("storescp", storescp.ae_title, "127.0.0.1", storescp.port)
    node = Node(ae_title=orthanc.ae_title, host="127.0.0.1", port=orthanc.port)
    client = Client(Settings())
    moved = client.move_study(node, corpus[0].study_uid, storescp.ae_title).raise_for_status()
    assert (moved.status, moved.completed, moved.failed) == ("success", 6, 0)
    series = client.move_series(node, corpus[0].study_uid, corpus[0].series_uid, storescp.ae_title)
    assert series.completed == 3
    assert json.loads(series.model_dump_json())["status"] == "success"
    assert sorted(p.name.split(".", 1)[1] for p in storescp.received()) == sorted(
        c.sop_instance_uid for c in corpus if c.study_uid == corpus[0].study_uid)


def test_async_client_gathers_typed_finds_and_reports_progress_on_the_loop(orthanc, corpus, tmp_path):
    node = Node(ae_title=orthanc.ae_title, host="127.0.0.1", port=orthanc.port)
    studies = sorted({c.study_uid for c in corpus})

    async def main():
        client = AsyncClient(Settings())
        found = await asyncio.gather(*(client.find_series(node, SeriesQuery(study_instance_uid=uid), timeout=30)
                                       for uid in studies))
        loop_thread = []
        progress = []

        def on_progress(state: RetrieveProgress) -> None:
            loop_thread.append(threading.current_thread() is threading.main_thread())
            progress.append(state.received)

        result = await client.get_study(node, studies[0], tmp_path, progress=on_progress, timeout=60)
        return found, result, progress, loop_thread

    found, result, progress, on_loop = asyncio.run(main())
    assert [{s.study_instance_uid for s in series} for series in found] == [{uid} for uid in studies]
    assert result.status == "success" and max(progress) == 6
    assert on_loop and all(on_loop)


def test_async_timeout_raises_timeout_error(orthanc, corpus):
    from proxy import RecordingProxy

    proxy = RecordingProxy("127.0.0.1", orthanc.port, delay=2.0)
    node = Node(ae_title=orthanc.ae_title, host="127.0.0.1", port=proxy.port)

    async def main():
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await AsyncClient(Settings()).find_studies(node, timeout=0.5)
        return asyncio.get_running_loop().time() - started

    try:
        assert asyncio.run(main()) < 1.5
    finally:
        proxy.close()


@pytest.mark.parametrize("source", ["archive", "folder"])
def test_move_from_the_archive_or_a_folder_stores_to_the_destination(source, archive, corpus_dir, storescp, corpus):
    from pacskit.settings import NodeConfig

    settings = Settings(archive=ArchiveSettings(data_dir=archive.settings.archive.data_dir),
                        nodes={"viewer": NodeConfig(ae_title=storescp.ae_title, host="127.0.0.1",
                                                    port=storescp.port)})
    node = "archive" if source == "archive" else str(corpus_dir)
    client = Client(settings)
    moved = client.move_series(node, corpus[0].study_uid, corpus[0].series_uid, storescp.ae_title)
    assert (moved.status, moved.completed, moved.failed) == ("success", 3, 0)
    assert sorted(p.name.split(".", 1)[1] for p in storescp.received()) == sorted(
        c.sop_instance_uid for c in corpus if c.series_uid == corpus[0].series_uid)
    with pytest.raises(MoveDestinationUnknown):
        client.move_study(node, corpus[0].study_uid, "NOWHERE")
