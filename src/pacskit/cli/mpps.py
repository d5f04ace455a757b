"""``pacskit mpps``: Modality Performed Procedure Step as an SCU (``create``, ``set``,
``get`` on a node) and the archive's steps (``ls``, ``show``), PS3.4 Annex F."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydicom import Dataset

from pacskit.cli.archive import DataDirOption, DbOption, archive_settings
from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import err, out, print_json, state
from pacskit.cli.global_options import with_global_options
from pacskit.cli.node_argument import DimseNode
from pacskit.errors import InputError, UsageError
from pacskit.mpps.build import (
    InstanceRef,
    StepFields,
    create_from_fields,
    create_from_worklist_item,
    final_set,
    listed_instances,
    study_uids,
    text_of,
)
from pacskit.mpps.model import StepStatus
from pacskit.privacy import PrivacyPolicy

app = typer.Typer(no_args_is_help=True,
                  help="Modality Performed Procedure Step: create, set and get a step on a node; "
                       "ls and show the archive's.")


class StepFormat(str, Enum):
    """What ``mpps get`` and ``mpps show`` print."""

    text = "text"
    json = "json"
    dicom_json = "dicom-json"


@app.command("create")
@with_global_options
def create(
    ctx: typer.Context,
    node: DimseNode,
    from_worklist: Annotated[Path | None, typer.Option("--from-worklist", help="A worklist item as DICOM JSON (as `worklist --format dicom-json` or `worklist ls --format json` print it).")] = None,
    patient_id: Annotated[str | None, typer.Option("--patient-id", "-p", help="PatientID.")] = None,
    study_uid: Annotated[str | None, typer.Option("--study-uid", help="StudyInstanceUID (a new one by default).")] = None,
    accession: Annotated[str | None, typer.Option("--accession", "-a", help="AccessionNumber.")] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="Modality (the worklist step's by default).")] = None,
    station_aet: Annotated[str | None, typer.Option("--station-aet", "-s", help="Performed Station AE Title (the worklist step's, else our AE title).")] = None,
    procedure: Annotated[str | None, typer.Option("--procedure", help="Procedure (step) description.")] = None,
    procedure_id: Annotated[str | None, typer.Option("--procedure-id", help="RequestedProcedureID.")] = None,
    step_id: Annotated[str | None, typer.Option("--step-id", help="ScheduledProcedureStepID.")] = None,
    pps_id: Annotated[str | None, typer.Option("--pps-id", help="PerformedProcedureStepID (the start time by default).")] = None,
    uid: Annotated[str | None, typer.Option("--uid", help="SOP Instance UID of the step (a new one by default).")] = None,
    called_ae: CalledAeOption = None,
) -> None:
    """Tell NODE a procedure step has started (N-CREATE, IN PROGRESS, PS3.4 F.7.2.1);
    print the step's SOP Instance UID. Patient's Name is sent empty unless names are
    allowed.

    Examples:

      pacskit mpps create pacs --from-worklist item.json

      pacskit mpps create pacs -p 12345 -a ACC1 --modality CT --procedure 'CT THORAX'
    """
    client = state(ctx).client()
    settings = client.settings
    fields = [patient_id, study_uid, accession, procedure, procedure_id, step_id]
    if from_worklist is not None:
        if any(v is not None for v in fields):
            raise UsageError("give --from-worklist or the item's fields, not both")
        dataset = create_from_worklist_item(_worklist_item(from_worklist), station_aet=station_aet,
                                            modality=modality, pps_id=pps_id,
                                            allow_patient_names=settings.allow_patient_names)
        if not dataset.PerformedStationAETitle:
            dataset.PerformedStationAETitle = settings.ae_title
    else:
        if not modality:
            raise UsageError("--modality is required without --from-worklist")
        dataset = create_from_fields(StepFields(
            modality=modality, station_aet=station_aet or settings.ae_title, patient_id=patient_id or "",
            study_uid=study_uid or "", accession=accession or "", procedure=procedure or "",
            requested_procedure_id=procedure_id or "", step_id=step_id or ""), pps_id=pps_id)
    if not dataset.Modality:
        raise UsageError("the worklist item has no modality: give --modality")
    created = client.mpps_create(target(client, node, called_ae), dataset, _uid(uid) if uid else None)
    out.print(created, markup=False)


@app.command("set")
@with_global_options
def set_(
    ctx: typer.Context,
    node: DimseNode,
    uid: Annotated[str, typer.Argument(help="SOP Instance UID of the step.")],
    status: Annotated[str, typer.Option("--status", help="COMPLETED or DISCONTINUED.")],
    instances: Annotated[list[Path] | None, typer.Option("--instances", help="DICOM files or folders the step produced; repeatable.")] = None,
    study_uid: Annotated[str | None, typer.Option("--study-uid", help="List the instances the local archive holds of this study.")] = None,
    retrieve_ae: Annotated[str | None, typer.Option("--retrieve-ae", help="Retrieve AE Title of the series (empty by default).")] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
    called_ae: CalledAeOption = None,
) -> None:
    """End a step on NODE (N-SET to COMPLETED or DISCONTINUED, PS3.4 F.7.2.2), its
    Performed Series Sequence built from the files or from the archive's study.

    Examples:

      pacskit mpps set pacs 1.2.3.4 --status COMPLETED --instances ./acquired

      pacskit mpps set pacs 1.2.3.4 --status DISCONTINUED
    """
    final = _status(status)
    if not final.is_final:
        raise UsageError("--status: give COMPLETED or DISCONTINUED")
    if instances and study_uid:
        raise UsageError("give --instances or --study-uid, not both")
    if instances:
        from pacskit.mpps.files import instances_in_files

        refs = instances_in_files(instances)
    elif study_uid:
        refs = _archive_instances(ctx, data_dir, db, study_uid)
    else:
        refs = []
    modifications = final_set(final, refs, retrieve_ae=retrieve_ae or "")
    client = state(ctx).client()
    client.mpps_set(target(client, node, called_ae), _uid(uid), modifications)
    series = len(modifications.PerformedSeriesSequence)
    out.print(f"{uid}  {final.value}  {len(refs)} instance" + ("s" if len(refs) != 1 else "")
              + f" in {series} series", markup=False)


@app.command("get")
@with_global_options
def get(
    ctx: typer.Context,
    node: DimseNode,
    uid: Annotated[str, typer.Argument(help="SOP Instance UID of the step.")],
    output: Annotated[StepFormat, typer.Option("--format", "-f", help="text, json or dicom-json (PS3.18 F.2).")] = StepFormat.text,
    called_ae: CalledAeOption = None,
) -> None:
    """Print a step as NODE has it (N-GET, MPPS Retrieve SOP Class, PS3.4 F.8); names
    withheld unless allowed.

    Examples:

      pacskit mpps get pacs 1.2.3.4

      pacskit mpps get pacs 1.2.3.4 -f json
    """
    client = state(ctx).client()
    step = client.mpps_get(target(client, node, called_ae), _uid(uid))
    _print_step(uid, step, output, {})


@app.command("ls")
@with_global_options
def ls(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="Only the steps in this status.")] = None,
    output: Annotated[StepFormat, typer.Option("--format", "-f", help="text or json.")] = StepFormat.text,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List the archive's performed procedure steps.

    Examples:

      pacskit mpps ls

      pacskit mpps ls --status COMPLETED -f json
    """
    wanted = _status(status) if status else None
    with _steps(ctx, data_dir, db) as steps:
        stored = steps.steps(wanted)
    privacy = PrivacyPolicy(state(ctx).settings().allow_patient_names)
    if output is not StepFormat.text:
        print_json([privacy_json(s.to_json(), privacy) for s in stored])
        return
    for step in stored:
        first = (step.dataset.get("ScheduledStepAttributesSequence") or [Dataset()])[0]
        out.print("\t".join([step.uid, step.status.value, text_of(step.dataset, "Modality"),
                             text_of(step.dataset, "PerformedStationAETitle"), text_of(step.dataset, "PatientID"),
                             text_of(first, "StudyInstanceUID"), text_of(first, "AccessionNumber")]), markup=False)
    if not stored:
        err.print("No performed procedure steps.", markup=False)


@app.command("show")
@with_global_options
def show(
    ctx: typer.Context,
    uid: Annotated[str, typer.Argument(help="SOP Instance UID of the step.")],
    output: Annotated[StepFormat, typer.Option("--format", "-f", help="text, json or dicom-json.")] = StepFormat.text,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Show a step from the local archive; for a COMPLETED or DISCONTINUED step, the
    instances it lists that the archive does not hold, and the instances the archive
    holds of its studies that it does not list.

    Examples:

      pacskit mpps show 1.2.3.4

      pacskit mpps show 1.2.3.4 -f dicom-json
    """
    with _steps(ctx, data_dir, db) as steps:
        stored = steps.get(uid)
        if stored is None:
            raise InputError(f"no performed procedure step {uid} in the archive")
        held = steps.study_instances(study_uids(stored.dataset)) if stored.status.is_final else []
    comparison: dict[str, Any] = {}
    if stored.status.is_final:
        listed = {ref.sop_instance_uid: ref for ref in listed_instances(stored.dataset)}
        stored_uids = {ref.sop_instance_uid: ref for ref in held}
        comparison = {"listed": len(listed), "held": len(stored_uids),
                      "listed_not_held": [_ref_json(r) for u, r in listed.items() if u not in stored_uids],
                      "held_not_listed": [_ref_json(r) for u, r in stored_uids.items() if u not in listed]}
    dataset = PrivacyPolicy(state(ctx).settings().allow_patient_names).scrub_response(stored.dataset)
    _print_step(uid, dataset, output, comparison, status=stored.status.value)


def privacy_json(document: dict[str, Any], privacy: PrivacyPolicy) -> dict[str, Any]:
    """A stored step's JSON with its names withheld unless allowed."""
    step = privacy.scrub_response(Dataset.from_json(document["step"]))
    return {**document, "step": step.to_json_dict()}


def _print_step(uid: str, step: Dataset, output: StepFormat, comparison: dict[str, Any],
                status: str | None = None) -> None:
    if output is StepFormat.dicom_json:
        print_json(step.to_json_dict())
        return
    summary = _summary(uid, step, status)
    if output is StepFormat.json:
        print_json({**summary, **comparison})
        return
    for key, value in summary.items():
        out.print(f"{_LABELS[key]:<18}{', '.join(value) if isinstance(value, list) else value}", markup=False)
    if comparison:
        out.print(f"{'Held':<18}{comparison['held']} instances of the study", markup=False)
        for key, label in (("listed_not_held", "Listed, not held"), ("held_not_listed", "Held, not listed")):
            out.print(f"{label:<18}{len(comparison[key])}", markup=False)
            for ref in comparison[key]:
                out.print(f"  {ref['sop_instance_uid']}  series {ref['series_uid']}", markup=False)


_LABELS = {"uid": "UID", "status": "Status", "started": "Started", "ended": "Ended", "modality": "Modality",
           "station_aet": "Station AE", "patient_id": "Patient ID", "studies": "Study", "accession": "Accession",
           "description": "Description", "series": "Series", "instances": "Listed"}


def _summary(uid: str, step: Dataset, status: str | None) -> dict[str, Any]:
    scheduled = step.get("ScheduledStepAttributesSequence") or []
    series = step.get("PerformedSeriesSequence") or []
    return {
        "uid": uid, "status": status or text_of(step, "PerformedProcedureStepStatus"),
        "started": " ".join(filter(None, [text_of(step, "PerformedProcedureStepStartDate"),
                                          text_of(step, "PerformedProcedureStepStartTime")])),
        "ended": " ".join(filter(None, [text_of(step, "PerformedProcedureStepEndDate"),
                                        text_of(step, "PerformedProcedureStepEndTime")])),
        "modality": text_of(step, "Modality"), "station_aet": text_of(step, "PerformedStationAETitle"),
        "patient_id": text_of(step, "PatientID"), "studies": study_uids(step),
        "accession": [a for a in (text_of(i, "AccessionNumber") for i in scheduled) if a],
        "description": text_of(step, "PerformedProcedureStepDescription"),
        "series": len(series), "instances": len(listed_instances(step)),
    }


def _uid(text: str) -> str:
    from pacskit.archive.uids import canonical_uid

    uid = canonical_uid(text)
    if uid is None:
        raise UsageError(f"{text!r} is not a UID (PS3.5 9.1)")
    return uid


def _status(text: str) -> StepStatus:
    try:
        return StepStatus.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _ref_json(ref: InstanceRef) -> dict[str, str]:
    return {"sop_class_uid": ref.sop_class_uid, "sop_instance_uid": ref.sop_instance_uid,
            "series_uid": ref.series_uid}


def _archive_instances(ctx: typer.Context, data_dir: Path | None, db: str | None, study_uid: str) -> list[InstanceRef]:
    with _steps(ctx, data_dir, db) as steps:
        refs = steps.study_instances([study_uid])
        details = steps.series_details([study_uid])
    if not refs:
        raise InputError(f"the archive holds no instance of study {study_uid}")
    return [InstanceRef(r.sop_class_uid, r.sop_instance_uid, r.series_uid,
                        series_description=text_of(details.get(r.series_uid, Dataset()), "SeriesDescription"),
                        protocol_name=text_of(details.get(r.series_uid, Dataset()), "ProtocolName"),
                        study_uid=r.study_uid) for r in refs]


class _steps:
    """The archive's :class:`~pacskit.archive.mpps.PerformedSteps`, its index closed on exit."""

    def __init__(self, ctx: typer.Context, data_dir: Path | None, db: str | None) -> None:
        self.settings = archive_settings(ctx, data_dir, db)

    def __enter__(self):  # type: ignore[no-untyped-def]
        from pacskit.archive.index import Index
        from pacskit.archive.mpps import PerformedSteps

        self.settings.archive.data_dir.mkdir(parents=True, exist_ok=True)
        self.index = Index.open(self.settings.archive.db_url())
        return PerformedSteps(self.index)

    def __exit__(self, *exc: object) -> None:
        self.index.close()


def _worklist_item(path: Path) -> Dataset:
    """The one worklist item of a DICOM JSON file: an object, a list of one, or a
    ``worklist ls --format json`` entry (its ``item``).

    Raises:
        InputError: the file cannot be read, is not DICOM JSON, holds no item or several.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None
    documents = document if isinstance(document, list) else [document]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise InputError(f"{path}: holds {len(documents)} worklist items; give a file of one")
    entry = documents[0].get("item", documents[0])
    try:
        item = Dataset.from_json(entry)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on bad JSON
        raise InputError(f"{path}: not DICOM JSON ({exc})") from None
    if not text_of(item, "StudyInstanceUID"):
        raise InputError(f"{path}: the worklist item has no StudyInstanceUID")
    return item
