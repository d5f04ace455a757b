"""``pacskit worklist``: query a node's Modality Worklist (``pacskit worklist NODE``), and
keep the archive's (``worklist add|ls|rm|status``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydicom import Dataset
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from pacskit.cli.archive import DataDirOption, DbOption, archive_settings
from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import MatchFormat, OutputFormat, err, out, print_json, state, write_rows
from pacskit.cli.global_options import with_global_options
from pacskit.cli.match_output import (
    TABLE_BOX,
    cell_text,
    print_answers,
)
from pacskit.cli.node_argument import DimseNode
from pacskit.errors import InputError, UsageError
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Level
from pacskit.worklist.items import from_fields, from_file, item_uid
from pacskit.worklist.model import STEP_SEQUENCE, ItemStatus
from pacskit.worklist.query import WorklistQuery

if TYPE_CHECKING:
    # typer vendors click: its base Context has no public name
    from typer._click.core import Context

STEP_COLUMNS = ["ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
                "ScheduledStationAETitle", "Modality", "ScheduledProcedureStepDescription"]
ITEM_COLUMNS = ["PatientID", "PatientName", "AccessionNumber"]


class _QueryUnlessCommand(TyperGroup):
    """``pacskit worklist NODE ...`` is ``pacskit worklist query NODE ...``: a first
    argument that names no subcommand (nor asks for help) starts a query."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["query", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_QueryUnlessCommand, no_args_is_help=True,
                  help="Modality Worklist: query a node (pacskit worklist NODE), or keep the archive's "
                       "(add, ls, rm, status).")


@app.command("query")
@with_global_options
def query_(
    ctx: typer.Context,
    node: DimseNode,
    station_aet: Annotated[str | None, typer.Option("--station-aet", "-s", help="Scheduled Station AE Title.")] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="Modality of the scheduled step.")] = None,
    date: Annotated[str | None, typer.Option("--date", "-d", help="Scheduled date or range: 20261201-20261205, today, today-.")] = None,
    patient_id: Annotated[str | None, typer.Option("--patient-id", "-p", help="PatientID.")] = None,
    accession: Annotated[str | None, typer.Option("--accession", "-a", help="AccessionNumber.")] = None,
    key: Annotated[list[str] | None, typer.Option("--key", "-k", help="Keyword=value to match, Keyword to return; a dotted path inside a sequence (ScheduledProcedureStepSequence.ScheduledStationName=CT1); repeatable.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Stop after N items (C-CANCEL).")] = None,
    output: Annotated[MatchFormat, typer.Option("--format", "-f", help="table (tab-separated lines when not a terminal), tsv, csv, json (by keyword) or dicom-json (PS3.18 F.2).")] = MatchFormat.table,
    called_ae: CalledAeOption = None,
) -> None:
    """Query a node's Modality Worklist (C-FIND, PS3.4 Annex K): one line per scheduled
    procedure step, by date and time.

    Examples:

      pacskit worklist pacs --date today

      pacskit worklist pacs -s CT1 --modality CT -f json

      pacskit worklist pacs -k ScheduledProcedureStepSequence.ScheduledStationName=CT1
    """
    query = WorklistQuery.build(station_aet=station_aet, modality=modality, date=date,
                                patient_id=patient_id, accession=accession, keys=key or [], limit=limit)
    client = state(ctx).client()
    items = client.worklist(target(client, node, called_ae), query)
    rows = sorted((row for item in items for row in step_rows(item)),
                  key=lambda r: (cell_text(r, STEP_COLUMNS[0]), cell_text(r, STEP_COLUMNS[1])))
    columns = _columns(rows, key or [])
    caption = f"{len(rows)} scheduled step" + ("s" if len(rows) != 1 else "")
    print_answers(output, items, rows, columns, Level.STUDY, caption, "No worklist items.")


def step_rows(item: Dataset) -> list[Dataset]:
    """One flat dataset per scheduled step of a worklist response: the item's own
    attributes, then the step's (sequences left out)."""
    steps = item.get(STEP_SEQUENCE)
    top = [e for e in item if e.VR != "SQ"]
    rows = []
    for step in (steps if steps else [Dataset()]):
        row = Dataset()
        for element in [*top, *(e for e in step if e.VR != "SQ")]:
            row.add(element)
        rows.append(row)
    return rows


def _columns(rows: list[Dataset], keys: list[str]) -> list[str]:
    columns = [*STEP_COLUMNS, *(c for c in ITEM_COLUMNS if c != "PatientName" or any(c in r for r in rows))]
    asked = [k.partition("=")[0].split(".")[-1].strip() for k in keys]
    return columns + [k for k in dict.fromkeys(asked) if k not in columns and k != STEP_SEQUENCE]


@app.command("add")
@with_global_options
def add(
    ctx: typer.Context,
    files: Annotated[list[Path] | None, typer.Argument(help="DICOM JSON (.json), DCMTK dumps (.dump) or DICOM files (.wl).")] = None,
    patient_id: Annotated[str | None, typer.Option("--patient-id", "-p", help="PatientID.")] = None,
    patient_name: Annotated[str | None, typer.Option("--patient-name", help="PatientName (stored, never shown unless names are allowed).")] = None,
    accession: Annotated[str | None, typer.Option("--accession", "-a", help="AccessionNumber.")] = None,
    study_uid: Annotated[str | None, typer.Option("--study-uid", help="StudyInstanceUID (a new one by default).")] = None,
    procedure: Annotated[str | None, typer.Option("--procedure", help="Requested procedure and step description.")] = None,
    procedure_id: Annotated[str | None, typer.Option("--procedure-id", help="RequestedProcedureID (the accession number by default).")] = None,
    step_id: Annotated[str | None, typer.Option("--step-id", help="ScheduledProcedureStepID (the procedure ID by default).")] = None,
    station_aet: Annotated[str | None, typer.Option("--station-aet", "-s", help="Scheduled Station AE Title.")] = None,
    station_name: Annotated[str | None, typer.Option("--station-name", help="Scheduled Station Name.")] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="Modality.")] = None,
    date: Annotated[str | None, typer.Option("--date", "-d", help="Scheduled date, YYYYMMDD or today.")] = None,
    time: Annotated[str | None, typer.Option("--time", "-t", help="Scheduled time, HHMM[SS].")] = None,
    key: Annotated[list[str] | None, typer.Option("--key", "-k", help="Keyword=value, a dotted path inside the step (ScheduledProcedureStepSequence.ScheduledStationName=CT1); repeatable.")] = None,
    status: Annotated[str, typer.Option("--status", help="SCHEDULED, STARTED, COMPLETED or DISCONTINUED.")] = "SCHEDULED",
    replace: Annotated[bool, typer.Option("--replace", help="Replace an item already there for the same step.")] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Put items on the archive's worklist, from files or from the options. An item that
    lacks an attribute PS3.4 Table K.6-1 requires is refused, and nothing is added.

    Examples:

      pacskit worklist add -p 12345 -a ACC1 --modality CT -s CT1 --date today --time 0930

      pacskit worklist add items/*.json
    """
    from pacskit.archive.index import Index
    from pacskit.archive.worklist import Worklist

    try:
        initial = ItemStatus.parse(status)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fields = _fields(patient_id, patient_name, accession, study_uid, procedure, procedure_id, step_id,
                     station_aet, station_name, modality, date, time, key or [])
    if files and fields:
        raise UsageError("give files or fields, not both")
    items = [item for path in files for item in from_file(path)] if files else [from_fields(fields)]
    settings = archive_settings(ctx, data_dir, db)
    settings.archive.data_dir.mkdir(parents=True, exist_ok=True)
    index = Index.open(settings.archive.db_url())
    try:
        worklist = Worklist(index)
        added = [worklist.add(item, item_uid(item), status=initial, replace=replace) for item in items]
    finally:
        index.close()
    for stored in added:
        out.print(f"{stored.uid}  {stored.status.value}", markup=False)
    err.print(f"Added {len(added)} worklist item" + ("s." if len(added) != 1 else "."), markup=False)


def _fields(patient_id: str | None, patient_name: str | None, accession: str | None, study_uid: str | None,
            procedure: str | None, procedure_id: str | None, step_id: str | None, station_aet: str | None,
            station_name: str | None, modality: str | None, date: str | None, time: str | None,
            keys: list[str]) -> dict[str, str]:
    """The fields of an item from the options; the UID and IDs made when not given."""
    import datetime as dt

    step = STEP_SEQUENCE
    chosen = {
        "PatientID": patient_id, "PatientName": patient_name, "AccessionNumber": accession,
        "RequestedProcedureDescription": procedure, f"{step}.ScheduledProcedureStepDescription": procedure,
        f"{step}.ScheduledStationAETitle": station_aet, f"{step}.ScheduledStationName": station_name,
        f"{step}.Modality": modality,
        f"{step}.ScheduledProcedureStepStartDate":
            dt.date.today().strftime("%Y%m%d") if date and date.lower() == "today" else date,
        f"{step}.ScheduledProcedureStepStartTime": time.replace(":", "") if time else None,
    }
    fields = {k: v for k, v in chosen.items() if v}
    for text in keys:
        name, sep, value = text.partition("=")
        if not sep:
            raise UsageError(f"--key {text!r}: give Keyword=value")
        fields[name.strip()] = value
    if not any(fields.values()):
        return {}
    fields.setdefault("StudyInstanceUID", study_uid or f"2.25.{uuid.uuid4().int}")
    fields.setdefault("RequestedProcedureID", procedure_id or accession or uuid.uuid4().hex[:16].upper())
    fields.setdefault(f"{step}.ScheduledProcedureStepID", step_id or fields["RequestedProcedureID"])
    return fields


@app.command("ls")
@with_global_options
def ls(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="Only the items in this status.")] = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, tsv, csv or json.")] = OutputFormat.table,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List the archive's worklist items with their status (names withheld unless allowed).

    Examples:

      pacskit worklist ls

      pacskit worklist ls -f json
    """
    from pacskit.archive.index import Index
    from pacskit.archive.worklist import Worklist

    try:
        wanted = ItemStatus.parse(status) if status else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    settings = archive_settings(ctx, data_dir, db)
    privacy = PrivacyPolicy(settings.allow_patient_names)
    index = Index.open(settings.archive.db_url())
    try:
        stored = Worklist(index).items(wanted)
    finally:
        index.close()
    for item in stored:
        privacy.scrub_response(item.dataset)
    fields = ["uid", "status", *STEP_COLUMNS, "PatientID", *(["PatientName"] if privacy.allow_patient_names else []),
              "AccessionNumber"]
    rows = [_ls_row(item.uid, item.status, item.dataset) for item in stored]
    if output is OutputFormat.json:
        print_json([item.to_json() for item in stored])
    elif output is OutputFormat.csv:
        write_rows(rows, fields, ",")
    elif output is OutputFormat.tsv or not out.is_terminal:
        write_rows(rows, fields, "\t")
    elif rows:
        table = Table(box=TABLE_BOX, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                      caption=f"{len(rows)} worklist item" + ("s" if len(rows) != 1 else ""),
                      caption_justify="left")
        for name in fields:
            table.add_column(_HEADERS.get(name, name), no_wrap=True)
        for row in rows:
            table.add_row(*(Text(row.get(name, "")) for name in fields))
        out.print(table, crop=False)
    if not rows:
        err.print("No worklist items.")


_HEADERS = {"uid": "UID", "status": "Status", "ScheduledProcedureStepStartDate": "Date",
            "ScheduledProcedureStepStartTime": "Time", "ScheduledStationAETitle": "Station AE",
            "ScheduledProcedureStepDescription": "Procedure", "AccessionNumber": "Accession"}


def _ls_row(uid: str, status: ItemStatus, item: Dataset) -> dict[str, Any]:
    row = step_rows(item)[0]
    values = {name: cell_text(row, name) for name in [*STEP_COLUMNS, *ITEM_COLUMNS]}
    return {"uid": uid, "status": status.value, **values}


@app.command("rm")
@with_global_options
def rm(
    ctx: typer.Context,
    uids: Annotated[list[str], typer.Argument(help="UIDs of the items (as worklist ls shows them).")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Take items off the archive's worklist.

    Examples:

      pacskit worklist rm 1.2.3.4

      pacskit worklist rm 1.2.3.4 1.2.3.5
    """
    from pacskit.archive.index import Index
    from pacskit.archive.worklist import Worklist

    index = Index.open(archive_settings(ctx, data_dir, db).archive.db_url())
    try:
        worklist = Worklist(index)
        unknown = [uid for uid in uids if not worklist.remove(uid)]
    finally:
        index.close()
    err.print(f"Removed {len(uids) - len(unknown)} worklist item" + ("s." if len(uids) - len(unknown) != 1 else "."),
              markup=False)
    if unknown:
        raise InputError(f"no worklist item {unknown[0]}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))


@app.command("status")
@with_global_options
def status_(
    ctx: typer.Context,
    uid: Annotated[str, typer.Argument(help="UID of the item.")],
    new: Annotated[str, typer.Argument(help="STARTED, COMPLETED or DISCONTINUED.")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Move an item on (forward only, never out of COMPLETED or DISCONTINUED).

    Examples:

      pacskit worklist status 1.2.3.4 STARTED

      pacskit worklist status 1.2.3.4 COMPLETED
    """
    from pacskit.archive.index import Index
    from pacskit.archive.worklist import Worklist

    try:
        wanted = ItemStatus.parse(new)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    index = Index.open(archive_settings(ctx, data_dir, db).archive.db_url())
    try:
        stored = Worklist(index).set_status(uid, wanted)
    finally:
        index.close()
    if stored is None:
        raise InputError(f"no worklist item {uid}")
    out.print(f"{stored.uid}  {stored.status.value}", markup=False)

