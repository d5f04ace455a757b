"""Instances that a layout without {SOPInstanceUID} puts on the same path: each gets a
file of its own, a re-run finds each where it is, and nothing is ever overwritten or
taken for another instance."""

from __future__ import annotations

import threading
from pathlib import Path

from pydicom import dcmread

from pacskit.layout import Layout
from pacskit.placement import Placements, instance_in, is_uid
from pacskit.storage import FolderSink
from pacskit.testing.corpus import generate_corpus

SHARED = Layout("{Modality}/{InstanceNumber:04d}.dcm")


def instances(tmp_path: Path, count: int = 3) -> list[tuple[str, bytes]]:
    made = generate_corpus(tmp_path / "corpus", patients=1, studies_per_patient=1, series_per_study=count,
                           instances_per_series=1, seed=3, modalities=("MR",))
    return [(m.sop_instance_uid, m.path.read_bytes()) for m in made]


def uid_of(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_instances_on_one_path_get_numbered_files_and_a_rerun_finds_them(tmp_path):
    made = instances(tmp_path)
    first = [FolderSink(tmp_path / "out", SHARED).write_encoded(data) for _, data in made]
    assert [w.path.relative_to(tmp_path / "out").as_posix() for w in first] == \
        ["MR/0001.dcm", "MR/0001-2.dcm", "MR/0001-3.dcm"]
    assert [uid_of(w.path) for w in first] == [uid for uid, _ in made]

    again = FolderSink(tmp_path / "out", SHARED)
    rerun = [again.write_encoded(data) for _, data in reversed(made)]
    assert all(w.skipped for w in rerun)
    assert {w.path for w in rerun} == {w.path for w in first}
    assert sorted(p.name for p in (tmp_path / "out/MR").iterdir()) == ["0001-2.dcm", "0001-3.dcm", "0001.dcm"]


def test_overwrite_replaces_the_same_instance_only(tmp_path):
    made = instances(tmp_path, 2)
    sink = FolderSink(tmp_path / "out", SHARED)
    paths = [sink.write_encoded(data).path for _, data in made]
    whole = paths[1].read_bytes()
    paths[1].write_bytes(whole[:-4] + b"XXXX")
    forced = FolderSink(tmp_path / "out", SHARED, overwrite=True).write_encoded(made[1][1])
    assert (forced.path, forced.skipped) == (paths[1], False)
    assert paths[1].read_bytes() == whole
    assert uid_of(paths[0]) == made[0][0]
    assert len(list((tmp_path / "out/MR").iterdir())) == 2


def test_a_file_that_holds_no_readable_instance_is_left_alone(tmp_path):
    (uid, data), = instances(tmp_path, 1)
    target = tmp_path / "out/MR/0001.dcm"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not dicom")
    for overwrite in (False, True):
        written = FolderSink(tmp_path / "out", SHARED, overwrite=overwrite).write_encoded(data)
        assert written.path == tmp_path / "out/MR/0001-2.dcm"
    assert target.read_bytes() == b"not dicom"
    assert instance_in(target) is None and instance_in(written.path) == uid


def test_instances_written_at_once_to_one_path_all_arrive(tmp_path):
    made = instances(tmp_path, 8)
    sink = FolderSink(tmp_path / "out", SHARED)
    start = threading.Barrier(len(made))
    results = []

    def write(data: bytes) -> None:
        start.wait(timeout=10)
        results.append(sink.write_encoded(data))

    threads = [threading.Thread(target=write, args=(data,)) for _, data in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len({w.path for w in results}) == len(made) and not any(w.skipped for w in results)
    assert sorted(uid_of(p) for p in (tmp_path / "out/MR").iterdir()) == sorted(uid for uid, _ in made)


def test_a_file_written_by_another_process_meanwhile_is_not_replaced(tmp_path):
    made = instances(tmp_path, 2)
    placements = Placements()
    target = tmp_path / "MR/0001.dcm"
    target.parent.mkdir()
    place, present = placements.find(target, made[0][0])
    assert (place, present) == (target, False)
    target.write_bytes(made[1][1])
    assert placements.taken(target, made[0][0], place) == (tmp_path / "MR/0001-2.dcm", False)
    assert placements.find(target, made[1][0]) == (target, True)


def test_only_well_formed_uids_name_a_file_alone():
    assert is_uid("1.2.840.10008.5.1.4.1.1.2")
    for bad in ("", "1..2", "01.2", "1.2 3", "1.2_3", "1." + "2" * 70, "../1"):
        assert not is_uid(bad), bad
