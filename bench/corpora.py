"""The benchmark corpora, generated once into a cache folder and reused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pacskit.testing.corpus import generate_corpus

SEEDS = {"small": 11, "large": 12, "archive": 13, "concurrency": 14, "page": 15, "big": 16}


@dataclass(frozen=True)
class Corpus:
    """A generated corpus: one study, in one folder."""

    name: str
    path: Path
    study_uid: str
    count: int
    bytes: int


def make(cache: Path, name: str, *, instances: int, series: int, rows: int,
         patients: int = 1, studies: int = 1) -> Corpus:
    """The corpus ``name`` under ``cache``: ``instances`` CT instances of ``rows``² 16-bit
    pixels, ``patients`` × ``studies`` × ``series`` (generated on first use). With one
    patient and one study, :attr:`Corpus.study_uid` is that study."""
    folder = cache / f"{name}-{patients}x{studies}x{series}-{instances}x{rows}"
    stamp = folder / ".complete"
    if not stamp.exists():
        per_series = max(1, instances // (patients * studies * series))
        items = generate_corpus(folder / "data", patients=patients, studies_per_patient=studies,
                                series_per_study=series, instances_per_series=per_series,
                                rows=rows, columns=rows, seed=SEEDS[name], modalities=("CT",))
        stamp.write_text(items[0].study_uid)
    files = [p for p in (folder / "data").rglob("*.dcm")]
    return Corpus(name, folder / "data", stamp.read_text(), len(files),
                  sum(p.stat().st_size for p in files))
