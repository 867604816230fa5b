"""The ``liverhealth`` command: segment (with --report, --save-db), models, db, gui.

Expected failures print one line and exit with status 2; a bug prints a short notice and
writes the traceback to the log file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from liverhealth import __version__, config
from liverhealth.cli_review import add_review_parsers
from liverhealth.errors import Cancelled, InputError, LiverHealthError
from liverhealth.text import one_line

EXIT_USER_ERROR = 2
MAX_ID = 2**63 - 1


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line (what is wrong, where to look) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"liverhealth: error: {one_line(message)} (see `{self.prog} --help`)\n")


def pixel_size(text: str) -> float:
    """A pixel size flag: a finite number of mm between 0.001 and 100."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0.001 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a pixel size in mm (a number from 0.001 to 100)")
    return value


def iso_date(text: str) -> date:
    """A date flag in YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a date; write YYYY-MM-DD") from None


def record_id(text: str) -> int:
    """A database id: a whole number from 1 up."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text[:24]!r} is not a result or study id (a whole number from 1)")
    return value


def _progress_bar(total_hint: str):
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if total <= 1:
            return
        if "bar" not in bar:  # it starts where the work does (a cascade skips the slices outside the liver)
            bar["bar"] = tqdm(total=total, initial=done, desc=total_hint, unit="slice", file=sys.stderr, leave=False)
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return update


def _workstation(args: argparse.Namespace, llm=None, face: str = "cli"):
    from liverhealth.domain import Actor
    from liverhealth.workflow import Workstation

    return Workstation(
        models_dir=args.models_dir, db_url=getattr(args, "db_url", None), llm=llm, actor=Actor.local(face)
    )


def cmd_segment(args: argparse.Namespace) -> int:
    from liverhealth.imaging.writers import check_output_folder
    from liverhealth.presentation import check_first_note, size_summary
    from liverhealth.reporting import LlmSettings

    out_dir = check_output_folder(Path(args.out) if args.out else Path.cwd() / "liverhealth_out")
    settings = LlmSettings.from_environment() if args.report else None  # a bad setting fails before the work
    workstation = _workstation(args, settings)
    workstation.manifest.get(args.model)  # an unknown model fails before the slow load
    if args.store:
        workstation.pacs  # noqa: B018 - no PACS configured: say so before the slow work
    session = workstation.session()
    session.open(args.input, args.pixel_size, progress=_progress_bar("retrieving"))
    dicom_out = args.dicom_out or (str(out_dir / "dicom") if args.store else None)
    if dicom_out:  # a CT that cannot carry a SEG is refused before the slow work
        session.check_dicom_export()
    result = session.segment(args.model, progress=_progress_bar("segmenting"))
    written = session.export(out_dir)
    reference_note = ""
    if args.reference:
        scores = session.compare_reference(args.reference)
        shown = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in scores.items() if v is not None)
        reference_note = f" Against the reference: {shown}."
    report_note = ""
    if args.report:
        content = session.make_report(include_patient=bool(args.store_patient))
        written.update(session.export_report(out_dir))
        draft = content.report.draft_notice or f"with an LLM draft by {content.report.draft_model}"
        report_note = f" Report: {draft}"
    stored_note = ""
    if dicom_out:
        dicom_files = session.export_dicom(Path(dicom_out))
        written.update(dicom_files)
        if args.store:
            try:
                sent, present = workstation.store_to_pacs(list(dicom_files.values()))
            except LiverHealthError as exc:
                raise LiverHealthError(f"{exc} The SEG and SR are in {dicom_out}; nothing was stored twice.") from exc
            stored_note = f" Stored on the PACS: {sent} new object(s), {present} already there."
    saved = ""
    if args.save_db:
        try:
            where = session.save(store_patient=args.store_patient)
        except LiverHealthError as exc:
            raise LiverHealthError(
                f"{exc} The outputs are in {out_dir}; retry with `liverhealth db save {out_dir}`."
            ) from exc
        saved = f" Saved as result {where.result_id} in the {where.where}."
    m = result.measurements
    print(
        f"{result.model.model_id}: {size_summary(m)}, {len(m.lesions)} lesion(s){check_first_note(m)}; "
        f"{result.timings['total_s']:.2f} s. Wrote {', '.join(p.name for p in written.values())} "
        f"to {out_dir}{' and ' + str(dicom_out) if dicom_out else ''}.{saved}{report_note}{reference_note}"
        f"{stored_note}"
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    workstation = _workstation(args)
    manifest = workstation.manifest
    if not manifest.models:
        print(f"No models in {manifest.path}.")
        return 0
    header = ("", "id", "name", "input", "liver Dice", "tumour Dice", "FP/case", "ms/slice", "status")
    rows, protocols = [header], []
    for spec, status in workstation.model_statuses():
        metrics = spec.metrics

        def fmt(key: str, metrics: dict = metrics) -> str:
            value = metrics.get(key)
            return f"{value:.3f}" if isinstance(value, int | float) else "n/a"

        size = f"{spec.input.channels}×{spec.input.size[0]}×{spec.input.size[1]}"
        if spec.input.pixel_mm:
            size += f" @{spec.input.pixel_mm:g}mm"
        protocol = metrics.get("protocol")
        if protocol and protocol not in protocols:
            protocols.append(protocol)
        note = f" [{protocols.index(protocol) + 1}]" if protocol else ""
        latency = f"{spec.latency_ms_per_slice_cpu:.0f}" if spec.latency_ms_per_slice_cpu else "n/a"
        mark = "*" if spec.model_id == manifest.default else ""
        fp = metrics.get("false_positives")
        fp_text = f"{fp:.1f}" if isinstance(fp, int | float) else "n/a"
        caution = manifest.caution(spec.model_id)
        status = f"{status}; {caution}" if caution else status
        rows.append(
            (
                mark,
                spec.model_id,
                spec.name,
                size,
                fmt("liver_dice"),
                fmt("tumour_dice") + note,
                fp_text,
                latency,
                status,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    right = {4, 5, 6, 7}
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))]
        print("  ".join(cells) + "  " + row[-1])
    print(
        "* default model. Dice and false-positive lesions per case (FP/case) are from the protocol noted; "
        "see models/MODEL_CARD.md."
    )
    for number, protocol in enumerate(protocols, start=1):
        print(f"[{number}] {protocol}")
    return 0


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return f"{value:.{digits}f} {unit}" if value is not None else "n/a"


def _tumour(value: float | None) -> str:
    from liverhealth.presentation import TUMOUR_ML_DIGITS

    return _fmt(value, "mL", TUMOUR_ML_DIGITS)


def cmd_db_init(args: argparse.Namespace) -> int:
    where, revision = _workstation(args).init_database()
    print(f"Database ready ({where}), schema revision {revision}.")
    return 0


def cmd_db_list(args: argparse.Namespace) -> int:
    from liverhealth.presentation import worklist_state

    workstation = _workstation(args)
    patients = workstation.worklist(patient=args.patient, model_id=args.model, since=args.since, until=args.until)
    if not patients:
        print(f"No saved results in the {workstation.database_where}.")
        return 0
    studies = sum(len(p.studies) for p in patients)
    print(f"{len(patients)} patient group(s), {studies} stud(ies) in the {workstation.database_where}; newest first.")
    for patient in patients:
        details = ", ".join(
            filter(None, (patient.sex and f"sex {patient.sex}", patient.birth_date and f"born {patient.birth_date}"))
        )
        print(f"{patient.label}{f' ({details})' if details else ''}")
        for study in patient.studies:
            print(f"  {_study_heading(study)}")
            for r in study.results:
                print(
                    f"    {r.result_id:>5}  saved {r.saved_at}  {r.model_id:<14} "
                    f"liver {_fmt(r.liver_volume_ml, 'mL'):>11}  tumour {_tumour(r.tumour_volume_ml):>10}  "
                    f"{r.lesion_count:>3} lesion(s)  {worklist_state(r)[:24]}"
                )
    return 0


def _study_heading(study) -> str:
    """'2009-11-26 12:50  CT ABDOMEN  accession 123  CT series, 129 slices ... (study 4)'."""
    when = f"{study.date} {study.time[:2]}:{study.time[2:4]}" if study.date and len(study.time) >= 4 else study.date
    shifted = " (shifted)" if study.dates_shifted and study.date else ""
    parts = [
        f"{when or 'no study date'}{shifted}",
        study.description,
        study.accession and f"accession {study.accession}",
    ]
    return "  ".join(filter(None, parts)) + f"  {study.source} (study {study.study_id})"


def cmd_db_show(args: argparse.Namespace) -> int:
    workstation = _workstation(args)
    stored = workstation.get(args.id)
    s = stored.summary
    print(
        f"Result {s.result_id} (study {s.study_id}), saved {s.created_at:%Y-%m-%d %H:%M:%S} by "
        f"{stored.user_name or '?'} on {stored.workstation or '?'}"
    )
    study = stored.study
    print(f"  study: {study.source.description} ({study.source.format}), shape {list(study.shape)}")
    print(f"  model: {stored.model.name} ({s.model_id}, sha256 {stored.model_sha256[:12]}…)")
    print(f"  validation: {stored.model.validation_text()}")
    print(
        f"  liver {_fmt(s.liver_volume_ml, 'mL')}, tumour {_tumour(s.tumour_volume_ml)}, "
        f"{s.lesion_count} lesion(s); reports: {len(stored.reports)}"
    )
    for lesion in stored.measurements.lesions:
        first, last = lesion.slice_range
        edited = " (reader-edited)" if lesion.edited else ""
        print(
            f"    lesion {lesion.lesion_id}: {_tumour(lesion.volume_ml)}, longest axial "
            f"{_fmt(lesion.longest_diameter_mm, 'mm')}, slices {first}–{last}{edited}"
        )
    history = workstation.history(args.id)
    if len(history) > 1:
        print("  history:")
        for h in history:
            who = f"revision {h.revision} by {h.author}" if h.revision else "the model's result"
            signed = f", signed by {h.signed_by}" if h.signed_by else ""
            mark = "  <- this one" if h.result_id == args.id else ""
            print(f"    result {h.result_id}: {who}, saved {h.created_at:%Y-%m-%d %H:%M}{signed}{mark}")
    return 0


def cmd_db_delete(args: argparse.Namespace) -> int:
    workstation = _workstation(args)
    if args.study:
        workstation.delete_study(args.id)
        print(f"Deleted study {args.id} with its results and reports from the {workstation.database_where}.")
    else:
        workstation.delete(args.id)
        print(f"Deleted result {args.id} and its reports from the {workstation.database_where}.")
    return 0


def cmd_db_export(args: argparse.Namespace) -> int:
    if args.training:
        if args.id is not None or args.out:
            raise LiverHealthError("--training DIR exports every reader-edited result: give no ID and no --out.")
        cases, skipped = _workstation(args).export_training(Path(args.training))
        for why in skipped:
            print(f"Skipped {why}.")
        print(
            f"Wrote {len(cases)} reader-edited case(s) to {args.training}; train on them with "
            f"python -m training.preprocess ... $(cat {Path(args.training) / 'preprocess_args.txt'})"
        )
        return 0
    if args.id is None or not args.out:
        raise LiverHealthError("Give the saved result's ID and --out DIR (or --training DIR for training cases).")
    written = _workstation(args).export_saved(args.id, Path(args.out), include_patient=args.include_patient)
    print(f"Wrote {', '.join(sorted(p.name for p in written.values()))} to {args.out}")
    return 0


def cmd_db_save(args: argparse.Namespace) -> int:
    saved = _workstation(args).save_folder(args.folder)
    print(f"Saved {args.folder} as result {saved.result_id} in the {saved.where}.")
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    workstation = _workstation(args)
    summary = workstation.backup_database(args.file)
    print(
        f"Backed up the {workstation.database_where} to {summary.path}: {_rows(summary.rows)}, schema "
        f"{summary.schema_revision}. It holds patient data and password hashes: keep it as safe as the database."
    )
    return 0


def cmd_db_restore(args: argparse.Namespace) -> int:
    workstation = _workstation(args)
    summary = workstation.restore_database(args.file)
    print(
        f"Restored {summary.path} (taken {summary.created_at}, schema {summary.schema_revision}) into the "
        f"{workstation.database_where}: {_rows(summary.rows)}."
    )
    return 0


def _rows(rows: dict[str, int]) -> str:
    results = rows.get("segmentation_result", 0)
    return f"{sum(rows.values())} rows in {len(rows)} tables ({results} result(s))"


XCB_LIBRARIES = {  # what Qt's xcb platform plugin loads, and the Debian package of each
    "xcb-icccm": "libxcb-icccm4",
    "xcb-image": "libxcb-image0",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-xinerama": "libxcb-xinerama0",
    "xcb-xkb": "libxcb-xkb1",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "xcb-shape": "libxcb-shape0",
}


def missing_xcb_packages() -> list[str]:
    """Debian packages Qt's xcb plugin needs that this machine lacks (only when a display is used)."""
    import ctypes.util

    if os.environ.get("QT_QPA_PLATFORM", "xcb").split(":")[0] != "xcb":
        return []
    return [package for library, package in XCB_LIBRARIES.items() if ctypes.util.find_library(library) is None]


def no_display() -> bool:
    """Whether Qt would look for a display that is not there (Linux, no DISPLAY or WAYLAND_DISPLAY,
    no offscreen platform asked for): Qt itself would abort the process (exit 134)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or platform.split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_gui(args: argparse.Namespace) -> int:
    if no_display() and args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    elif no_display():
        raise LiverHealthError(
            "The window needs a display and this session has none (DISPLAY is not set). Run it under a "
            "virtual one (xvfb-run liverhealth gui), or use the web page instead (liverhealth web)."
        )
    missing = missing_xcb_packages()
    if missing:
        raise LiverHealthError(
            f"The window cannot open: Qt's display plugin needs {', '.join(missing)}. Install them "
            f"(sudo apt-get install {' '.join(missing)}), or run with QT_QPA_PLATFORM=offscreen."
        )
    try:
        from liverhealth.gui.app import run
    except ImportError as exc:
        raise LiverHealthError(f"The window needs PyQt5 ({exc}): pip install 'liverhealth[gui]'.") from exc
    return run(
        _workstation(args, face="window"),
        args.open,
        args.segment,
        args.report,
        Path(args.screenshot) if args.screenshot else None,
        args.database,
    )


def cmd_web(args: argparse.Namespace) -> int:
    from liverhealth.web.server import serve

    try:
        from liverhealth.web.app import WebSettings
    except ImportError as exc:
        raise LiverHealthError(f"The web interface needs its extra ({exc}): pip install 'liverhealth[web]'.") from exc
    settings = WebSettings(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        workers=args.workers,
        secure_cookies=args.secure_cookies,
        max_waiting=args.max_queued,
        max_waiting_per_user=args.max_queued_per_user,
    )
    return serve(_workstation(args), args.host, args.port, settings)


def _read_password(args: argparse.Namespace) -> str:
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise LiverHealthError("No terminal to ask for the password: pipe it in with --password-stdin.")
    password = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != password:
        raise LiverHealthError("The two passwords differ; nothing was saved.")
    return password


def cmd_web_adduser(args: argparse.Namespace) -> int:
    print(_workstation(args).add_user(args.name, _read_password(args), args.admin))
    return 0


def cmd_web_passwd(args: argparse.Namespace) -> int:
    print(_workstation(args).set_password(args.name, _read_password(args)))
    return 0


def cmd_web_end_sessions(args: argparse.Namespace) -> int:
    ended = _workstation(args).end_user_sessions(args.name)
    print(f"Ended {ended} session(s) of {args.name}.")
    return 0


def cmd_db_audit(args: argparse.Namespace) -> int:
    from datetime import datetime

    since = datetime.combine(args.since, datetime.min.time()) if args.since else None
    workstation = _workstation(args)
    events = workstation.audit_trail(user=args.user, result_id=args.result, since=since, limit=args.limit)
    if not events:
        print(f"No audit events match in the {workstation.database_where}.")
        return 0
    print(f"{'when':<19}  {'user':<16} {'face':<6} {'client':<15} {'action':<16} {'result':>6} {'study':>6}  detail")
    for e in events:
        print(
            f"{e.at:%Y-%m-%d %H:%M:%S}  {e.user:<16} {e.face:<6} {e.client or '':<15} {e.action:<16} "
            f"{e.result_id or '':>6} {e.study_id or '':>6}  {e.detail or ''}"
        )
    return 0


def whole_number(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number from {low} to {high}")
        return value

    return parse


def cmd_compare(args: argparse.Namespace) -> int:
    from liverhealth.comparison import comparison_lines
    from liverhealth.imaging.writers import check_output_folder

    if len(args.studies) == 2 and args.prior is None:
        baseline_side, followup_side = args.studies
    elif len(args.studies) == 1 and args.prior is not None:
        baseline_side, followup_side = args.prior, args.studies[0]
    else:
        raise InputError(
            "Give the baseline and the follow-up, or the follow-up and --prior (auto, a result id or a CT)."
        )
    out = check_output_folder(Path(args.out) if args.out else Path.cwd() / "liverhealth_compare")
    workstation = _workstation(args)
    workstation.manifest.get(args.model)  # an unknown model fails before the slow work

    def study(side: str):
        return workstation.study(
            side, args.model, progress=_progress_bar("reading"), segment_progress=_progress_bar("segmenting")
        )

    followup = study(followup_side)
    if baseline_side == "auto":  # the latest earlier study of this patient among the saved ones
        prior = followup.latest_prior()
        print(f"Prior: study of {prior.date} ({prior.source}), result {prior.result_for(args.model).result_id}.")
        baseline = followup.open_prior(prior, args.model)
    else:
        baseline = study(baseline_side)
    if args.save_db and baseline.saved is None:
        baseline.save()
    result = followup.compare_with(baseline)
    written = followup.export_comparison(out)
    if args.report:
        followup.make_report()
        written.update(followup.export_report(out))
    saved = ""
    if args.save_db:
        try:
            followup.save()
            comparison_id = followup.save_comparison()
        except LiverHealthError as exc:
            raise LiverHealthError(f"{exc} The comparison is in {out}.") from exc
        saved = (
            f" Saved as comparison {comparison_id} of results {baseline.saved.result_id} (baseline) and "
            f"{followup.saved.result_id} (follow-up) in the {followup.saved.where}."
        )
    for line in comparison_lines(result.comparison):
        print(line)
    names = ", ".join(sorted(p.name for p in written.values()))
    print(f"Wrote {names} to {out}.{saved} A draft for radiologist review.")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    import signal
    from collections import Counter

    from tqdm import tqdm

    from liverhealth.batch import CaseOptions, discover, run_batch
    from liverhealth.imaging.writers import check_output_folder
    from liverhealth.reporting import LlmSettings

    if args.engine == "ray" and args.db_url:
        raise LiverHealthError(
            "With --engine ray each node reads the database URL from its own LIVERHEALTH_DB_URL or config "
            "file (a URL with a password is not sent through Ray): set it there and drop --db-url."
        )
    if args.ray_address and args.engine != "ray":
        raise LiverHealthError("--ray-address needs --engine ray.")
    out = check_output_folder(Path(args.out))
    if args.report:
        LlmSettings.from_environment()  # a bad LLM setting fails before the work
    workstation = _workstation(args)
    spec = workstation.manifest.get(args.model)  # an unknown model fails before any case
    if args.save_db and not args.ray_address:
        workstation.repository  # noqa: B018 - created/upgraded once here, not by every worker at once
    cases = discover(args.inputs)
    options = CaseOptions(spec.model_id, spec.sha256, args.report, args.dicom_out, args.save_db)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl+C: finished cases stay
    counts: Counter[str] = Counter()
    bar = tqdm(total=len(cases), unit="case", file=sys.stderr, desc="batch")

    def progressed(row) -> None:
        counts[row.status] += 1
        bar.set_postfix(done=counts["done"], skipped=counts["skipped"], failed=counts["error"])
        bar.update(1)

    try:
        rows = run_batch(
            cases, out, options, args.models_dir, args.db_url, args.workers, args.engine, args.ray_address,
            args.fail_fast, progressed,
        )  # fmt: skip
    finally:
        bar.close()
    failed = [r for r in rows if r.status == "error"]
    not_run = f", {counts['not run']} not run (interrupted)" if counts["not run"] else ""
    print(
        f"{len(rows)} of {len(cases)} case(s): {counts['done']} segmented, {counts['skipped']} already complete, "
        f"{len(failed)} failed{not_run}. Wrote {out / 'cohort.csv'}, cohort.parquet and cohort.png."
    )
    for row in failed:
        print(f"  {row.case_id}: {row.error}")
    for row in rows:
        if row.note and row.status == "done":
            print(f"  {row.case_id}: {row.note}")
    return EXIT_USER_ERROR if failed and (args.fail_fast or len(failed) == len(rows)) else 0


def cmd_pacs_find(args: argparse.Namespace) -> int:
    hits = _workstation(args).find_studies(
        patient_id=args.patient_id or "", accession=args.accession or "", study_date=args.date or "",
        modality=args.modality or "",
    )  # fmt: skip
    if not hits:
        print("No study matches.")
        return 0
    print(f"{'date':<9} {'patient ID':<16} {'accession':<14} {'modalities':<12} study UID")
    for hit in hits:
        print(f"{hit.study_date:<9} {hit.patient_id:<16} {hit.accession:<14} {hit.modalities:<12} {hit.study_uid}")
    return 0


def cmd_pacs_get(args: argparse.Namespace) -> int:
    folder = _workstation(args).retrieve(args.study_uid, progress=_progress_bar("retrieving"))
    count = sum(1 for p in folder.iterdir() if p.suffix == ".dcm")
    print(f"Retrieved {count} CT images of study {args.study_uid} into {folder}.")
    return 0


def _add_batch_parser(sub: argparse._SubParsersAction) -> None:
    batch = sub.add_parser("batch", help="segment a cohort: files, folders or a CSV of cases; a cohort table and plots")
    batch.add_argument("inputs", nargs="+", help="CT files, folders (each series or volume inside is a case), or a CSV")
    batch.add_argument("--out", required=True, help="output folder: one folder per case, cohort.csv/.parquet/.png")
    batch.add_argument("--model", default=None, help="model id (default: the manifest's)")
    batch.add_argument("--workers", type=whole_number(1, 64), default=1, help="worker processes (default 1)")
    batch.add_argument("--fail-fast", action="store_true", help="stop at the first failed case (exit 2)")
    engine_help = "local: a process pool (default); ray: Ray tasks (extra 'cluster')"
    batch.add_argument("--engine", choices=("local", "ray"), default="local", help=engine_help)
    address_help = "an existing Ray cluster (ray://HOST:10001, HOST:6379 or auto); default: a local Ray"
    batch.add_argument("--ray-address", default=None, help=address_help)
    batch.add_argument("--report", action="store_true", help="also write each case's report (PDF, Markdown)")
    batch.add_argument("--dicom-out", action="store_true", help="also write CASE/dicom/seg.dcm, sr.dcm (DICOM)")
    batch.add_argument("--save-db", action="store_true", help="also save each result in the results database")
    batch.add_argument("--db-url", default=None, help="database URL for --save-db (see `liverhealth db --help`)")
    batch.set_defaults(func=cmd_batch)


def _add_pacs_parser(sub: argparse._SubParsersAction) -> None:
    pacs = sub.add_parser("pacs", help="find and retrieve studies on the PACS (DICOMweb or DIMSE; see README)")
    actions = pacs.add_subparsers(dest="pacs_command", required=True)
    find = actions.add_parser("find", help="list studies matching a patient ID, accession, date or modality")
    find.add_argument("--patient-id", default=None)
    find.add_argument("--accession", default=None)
    find.add_argument("--date", default=None, help="YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    find.add_argument("--modality", default=None, help="e.g. CT")
    find.set_defaults(func=cmd_pacs_find)
    get = actions.add_parser("get", help="retrieve a study's CT series into the local cache")
    get.add_argument("study_uid")
    get.set_defaults(func=cmd_pacs_get)


def _add_web_parser(sub: argparse._SubParsersAction) -> None:
    web = sub.add_parser("web", help="start the web interface (log in, upload a CT, view, report, save)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    web.add_argument("--port", type=whole_number(1, 65535), default=8000, help="TCP port (default 8000)")
    web.add_argument("--workers", type=whole_number(1, 64), default=1, help="jobs worked on at once (default 1)")
    web.add_argument(
        "--max-upload-mb", type=whole_number(1, 1 << 20), default=2048, help="largest upload in MB (default 2048)"
    )
    web.add_argument("--secure-cookies", action="store_true", help="behind a TLS proxy: send cookies over HTTPS only")
    web.add_argument(
        "--max-queued",
        type=whole_number(1, 10_000),
        default=8,
        help="studies waiting or in work in all; the next upload is refused (default 8)",
    )
    web.add_argument(
        "--max-queued-per-user",
        type=whole_number(1, 10_000),
        default=2,
        help="studies waiting or in work per account (default 2)",
    )
    web.add_argument("--db-url", default=None, help="results and accounts database (see `liverhealth db --help`)")
    web.set_defaults(func=cmd_web)
    actions = web.add_subparsers(dest="web_command")
    add = actions.add_parser("adduser", help="create a web account (or reset its password)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may see and delete every user's results")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=cmd_web_adduser)
    passwd = actions.add_parser("passwd", help="change an account's password (its sessions end)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd.set_defaults(func=cmd_web_passwd)
    end = actions.add_parser("end-sessions", help="log an account out everywhere")
    end.add_argument("name")
    end.set_defaults(func=cmd_web_end_sessions)


def _add_db_parser(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="the results database (SQLite by default, or MySQL)")
    db.add_argument(
        "--db-url",
        default=None,
        help="database URL (default: $LIVERHEALTH_DB_URL, the config file, or an SQLite file in the user data folder)",
    )
    actions = db.add_subparsers(dest="db_command", required=True)
    actions.add_parser("init", help="create or upgrade the tables").set_defaults(func=cmd_db_init)
    listing = actions.add_parser("list", help="the worklist: saved results by patient, then study date, newest first")
    listing.add_argument("--patient", help="patient name or ID contains this")
    listing.add_argument("--model", help="only this model id")
    listing.add_argument("--since", type=iso_date, help="saved on or after YYYY-MM-DD")
    listing.add_argument("--until", type=iso_date, help="saved on or before YYYY-MM-DD")
    listing.set_defaults(func=cmd_db_list)
    show = actions.add_parser("show", help="show one saved result")
    show.add_argument("id", type=record_id)
    show.set_defaults(func=cmd_db_show)
    delete = actions.add_parser("delete", help="delete a saved result (or --study: a study and all its results)")
    delete.add_argument("id", type=record_id)
    delete.add_argument("--study", action="store_true", help="ID is a study id")
    delete.set_defaults(func=cmd_db_delete)
    export = actions.add_parser(
        "export", help="write a saved result's labels, measurements and reports (or --training: every correction)"
    )
    export.add_argument("id", type=record_id, nargs="?")
    export.add_argument("--out")
    export.add_argument(
        "--training",
        metavar="DIR",
        help="write each reader-edited result as a CT + labels case for training.preprocess (a new folder)",
    )
    export.add_argument(
        "--include-patient",
        action="store_true",
        help="the reports' Markdown header carries the patient and study the database kept (default: blanks "
        "for the reader; the saved PDFs are written as they were made)",
    )
    export.set_defaults(func=cmd_db_export)
    save = actions.add_parser("save", help="save a `liverhealth segment` output folder (retry a failed save)")
    save.add_argument("folder", type=Path)
    save.set_defaults(func=cmd_db_save)
    backup = actions.add_parser("backup", help="write the whole database to one portable file (safe while in use)")
    backup.add_argument("file", type=Path)
    backup.set_defaults(func=cmd_db_backup)
    restore = actions.add_parser("restore", help="restore a backup file into an empty database")
    restore.add_argument("file", type=Path)
    restore.set_defaults(func=cmd_db_restore)
    audit = actions.add_parser("audit", help="the audit trail: who opened, saved, exported, deleted what, and logins")
    audit.add_argument("--user", help="only this account or OS user")
    audit.add_argument("--result", type=record_id, help="only this saved result")
    audit.add_argument("--since", type=iso_date, help="on or after YYYY-MM-DD")
    audit.add_argument("--limit", type=whole_number(1, 1_000_000), default=1000, help="newest N events (default 1000)")
    audit.set_defaults(func=cmd_db_audit)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="liverhealth", description="Liver and liver-tumour CT workstation.")
    parser.add_argument("--version", action="version", version=f"liverhealth {__version__}")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="folder with manifest.json (default: $LIVERHEALTH_MODELS_DIR or models/)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment a CT (DICOM file/folder/zip, NIfTI, NRRD, PNG/JPG)")
    seg.add_argument("input", help="path to the CT or image, or pacs://STUDY_UID for a study on the PACS")
    seg.add_argument("--model", default=None, help="model id from `liverhealth models` (default: the manifest's)")
    seg.add_argument("--out", default=None, help="output folder (default: ./liverhealth_out)")
    seg.add_argument(
        "--pixel-size",
        type=pixel_size,
        default=None,
        help="pixel size in mm for a PNG/JPG slice, so areas come out in mm²",
    )
    seg.add_argument(
        "--report",
        action="store_true",
        help="also write report.pdf and report.md (measured findings + an LLM draft when one answers)",
    )
    seg.add_argument("--save-db", action="store_true", help="also save the result in the results database")
    seg.add_argument(
        "--dicom-out",
        default=None,
        help="also write a DICOM SEG (seg.dcm) and a TID 1500 measurement SR (sr.dcm) here (DICOM CT input)",
    )
    seg.add_argument(
        "--store",
        action="store_true",
        help="send the DICOM SEG and SR to the configured PACS (objects it already holds are not sent again)",
    )
    seg.add_argument(
        "--reference", default=None, help="a DICOM SEG of the same CT: print liver and tumour Dice against it"
    )
    seg.add_argument("--db-url", default=None, help="database URL for --save-db (see `liverhealth db --help`)")
    seg.add_argument(
        "--store-patient",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --save-db: keep the patient and study identity (default: as the site's identity setting says: "
        "clinical keeps it, research keeps a keyed pseudonym and shifted dates); --no-store-patient keeps none. "
        "With --report: the patient in the PDF (left out unless given)",
    )
    seg.set_defaults(func=cmd_segment)

    models = sub.add_parser("models", help="list the installed models and their metrics")
    models.set_defaults(func=cmd_models)
    _add_db_parser(sub)
    _add_web_parser(sub)
    _add_pacs_parser(sub)
    _add_batch_parser(sub)
    add_review_parsers(sub)
    compare = sub.add_parser("compare", help="read a follow-up CT against a baseline: lesion changes and RECIST 1.1")
    compare.add_argument(
        "studies",
        nargs="+",
        metavar="STUDY",
        help="BASELINE FOLLOWUP (each a CT any input segment takes, or a saved result id), or FOLLOWUP with --prior",
    )
    compare.add_argument(
        "--prior",
        default=None,
        help="the baseline for one FOLLOWUP: 'auto' (the latest earlier saved study of the same patient, by study "
        "date), a saved result id or a CT",
    )
    compare.add_argument("--out", default=None, help="output folder (default ./liverhealth_compare)")
    compare.add_argument("--model", default=None, help="model id for CT inputs (default: the manifest's)")
    compare.add_argument("--report", action="store_true", help="also write the follow-up's report with the comparison")
    compare.add_argument("--save-db", action="store_true", help="save both results and the comparison, linked")
    compare.add_argument("--db-url", default=None, help="database of the saved results (see `liverhealth db --help`)")
    compare.set_defaults(func=cmd_compare)
    gui = sub.add_parser("gui", help="start the workstation window")
    gui.add_argument("--open", default=None, help="open this CT or image at start")
    gui.add_argument("--segment", action="store_true", help="segment it once loaded")
    gui.add_argument("--report", action="store_true", help="then generate the diagnostic report")
    gui.add_argument("--database", action="store_true", help="then open the Read Database dialog")
    gui.add_argument(
        "--screenshot",
        default=None,
        help="after those steps, save the window (or the database dialog) as an image and exit",
    )
    gui.set_defaults(func=cmd_gui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``liverhealth`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"liverhealth: {exc}", file=sys.stderr)
        return 130
    except LiverHealthError as exc:
        print(f"liverhealth: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("liverhealth: interrupted; nothing more was written.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`liverhealth models | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:  # a bug: keep the traceback for the developers, not the user
        path = config.log_exception(f"'liverhealth {args.command}'")
        where = f" Details were written to {path}." if path else ""
        print(f"liverhealth: internal error while running '{args.command}'.{where} Please report it.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
