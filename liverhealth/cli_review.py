"""The command line's review commands: `liverhealth edit` (correct a result folder's labels into a
new revision folder) and `liverhealth sign` (sign the report of a result folder). Argument parsing
and printing only; the work is the workflow service's."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from liverhealth.errors import LiverHealthError


def _session(args: argparse.Namespace):
    from liverhealth.domain import Actor
    from liverhealth.workflow import Workstation

    workstation = Workstation(models_dir=args.models_dir, db_url=getattr(args, "db_url", None), actor=Actor.local())
    return workstation, workstation.open_folder(Path(args.folder))


def _text(value: str | None, path: str | None, what: str) -> str | None:
    """The text given on the command line, or read from a file (UTF-8)."""
    if value is not None and path is not None:
        raise LiverHealthError(f"Give the {what} as text or as a file, not both.")
    if path is None:
        return value
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LiverHealthError(f"Cannot read the {what} from {path}: {exc}.") from exc


def cmd_sign(args: argparse.Namespace) -> int:
    workstation, session = _session(args)
    content = session.sign(
        _text(args.impression, args.impression_file, "impression"), _text(None, args.draft_file, "draft text")
    )
    written = session.add_report_to_folder(Path(args.folder))
    saved = ""
    if args.save_db:
        result = session.save()
        saved = f" Saved as result {result.result_id} in the {result.where}."
    report = content.report
    names = ", ".join(sorted(path.name for path in written.values()))
    print(
        f"Signed by {report.signed_by} on {report.signed_at} UTC (result revision {report.revision}); wrote {names} "
        f"to {args.folder}.{saved} The signed report is locked: a later change needs `liverhealth edit`."
    )
    workstation.close()
    return 0


def voxel_index(text: str) -> tuple[int, int, int]:
    """'I,J,K' (a voxel index of labels.nii.gz: column, row, slice) as (z, y, x) of the label map."""
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text[:30]!r} is not a voxel index I,J,K (three whole numbers)")
    i, j, k = (int(p) for p in parts)
    return (k, j, i)


def lesion_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a lesion number (1, 2, ... as the findings list them)")
    return int(text)


LABELS = {"liver": 1, "tumour": 2, "tumor": 2}


def cmd_edit(args: argparse.Namespace) -> int:
    from liverhealth.presentation import size_summary

    workstation, session = _session(args)
    before = session.result.measurements
    label = LABELS[args.label]
    numbered = [("remove", session.lesion_seed(n), None) for n in args.remove_lesion]
    for n, to in args.relabel:
        if to not in LABELS or not n.isdigit():
            raise LiverHealthError(f"--relabel {n} {to}: give a lesion number and 'liver'.")
        if LABELS[to] == 2:
            raise LiverHealthError(
                f"Lesion {n} is tumour already; to mark part of the liver as tumour, use --add-lesion I,J,K."
            )
        numbered.append(("relabel", session.lesion_seed(int(n)), LABELS[to]))
    if not (numbered or args.paint or args.erase or args.add_lesion):
        raise LiverHealthError("Nothing to edit: give --add-lesion, --remove-lesion, --relabel, --paint or --erase.")
    for kind, seed, to in numbered:  # by the input's lesion numbers, before any edit renumbers them
        session.remove_lesion(seed) if kind == "remove" else session.relabel_lesion(seed, to)
    for z, y, x in args.paint:
        session.paint(z, (y, x), args.radius_mm, label)
    for z, y, x in args.erase:
        session.erase(z, (y, x), args.radius_mm, label)
    for seed in args.add_lesion:
        session.add_lesion(seed, args.method)
    result = session.result
    if result.revision is None:
        raise LiverHealthError("The edits changed no voxel; nothing was written.")
    folder = Path(args.folder)
    stem = re.sub(r"-revision-\d+$", "", folder.resolve().name)
    out = Path(args.out) if args.out else folder.resolve().with_name(f"{stem}-revision-{result.revision.number}")
    session.export_new_folder(out)
    saved = ""
    if args.save_db:
        where = session.save()
        saved = f" Saved as result {where.result_id} in the {where.where}."
    after = result.measurements
    print(
        f"Revision {result.revision.number} by {result.revision.author}: {result.revision.summary()}. "
        f"Was {size_summary(before)}, {len(before.lesions)} lesion(s); now {size_summary(after)}, "
        f"{len(after.lesions)} lesion(s). Wrote {out}.{saved} {folder} is unchanged."
    )
    workstation.close()
    return 0


def add_review_parsers(sub: argparse._SubParsersAction) -> None:
    """`liverhealth edit` and `liverhealth sign` on the main parser."""
    edit = sub.add_parser(
        "edit", help="correct a result folder's outline into a new revision folder (the folder itself is kept)"
    )
    edit.add_argument("folder", help="a `segment` (or earlier `edit`) output folder")
    edit.add_argument(
        "--add-lesion",
        type=voxel_index,
        action="append",
        default=[],
        metavar="I,J,K",
        help="outline the missed lesion at this voxel of labels.nii.gz in 3D and add it",
    )
    edit.add_argument(
        "--remove-lesion",
        type=lesion_number,
        action="append",
        default=[],
        metavar="N",
        help="lesion N of the folder's findings becomes liver",
    )
    edit.add_argument(
        "--relabel",
        nargs=2,
        action="append",
        default=[],
        metavar=("N", "liver|tumour"),
        help="lesion N becomes liver (a cyst, a vessel)",
    )
    edit.add_argument(
        "--paint",
        type=voxel_index,
        action="append",
        default=[],
        metavar="I,J,K",
        help="paint --label with a disc of --radius-mm on slice K around (I, J)",
    )
    edit.add_argument(
        "--erase",
        type=voxel_index,
        action="append",
        default=[],
        metavar="I,J,K",
        help="erase --label with a disc of --radius-mm on slice K around (I, J)",
    )
    edit.add_argument("--radius-mm", type=float, default=5.0, help="brush radius in mm (default 5)")
    edit.add_argument("--label", choices=["liver", "tumour"], default="tumour", help="what --paint/--erase draw")
    edit.add_argument(
        "--method",
        choices=["grow", "model"],
        default=None,
        help="how --add-lesion outlines (default: the measured better one, see README)",
    )
    edit.add_argument("--out", help="the revision's folder (default: FOLDER-revision-N beside it; must not exist)")
    edit.add_argument("--save-db", action="store_true", help="also save the model's result and the revision")
    edit.add_argument("--db-url", default=None, help="database URL (see `liverhealth db --help`)")
    edit.set_defaults(func=cmd_edit)
    sign = sub.add_parser("sign", help="sign the report of a result folder as this reader (the report is then locked)")
    sign.add_argument("folder", help="a `segment` or `edit` output folder")
    sign.add_argument("--impression", help="the reader's impression (plain text)")
    sign.add_argument("--impression-file", help="... or read it from this UTF-8 file")
    sign.add_argument("--draft-file", help="the draft text as the reader edited it (replaces the LLM's draft text)")
    sign.add_argument("--save-db", action="store_true", help="also save the result and the signed report")
    sign.add_argument("--db-url", default=None, help="database URL (see `liverhealth db --help`)")
    sign.set_defaults(func=cmd_sign)
