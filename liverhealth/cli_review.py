"""The command line's review commands: `liverhealth edit` (correct a result folder's labels into a
new revision folder) and `liverhealth sign` (sign the report of a result folder). Argument parsing
and printing only; the work is the workflow service's."""

from __future__ import annotations

import argparse
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


def add_review_parsers(sub: argparse._SubParsersAction) -> None:
    """`liverhealth sign` (and `liverhealth edit`) on the main parser."""
    sign = sub.add_parser("sign", help="sign the report of a result folder as this reader (the report is then locked)")
    sign.add_argument("folder", help="a `segment` or `edit` output folder")
    sign.add_argument("--impression", help="the reader's impression (plain text)")
    sign.add_argument("--impression-file", help="... or read it from this UTF-8 file")
    sign.add_argument("--draft-file", help="the draft text as the reader edited it (replaces the LLM's draft text)")
    sign.add_argument("--save-db", action="store_true", help="also save the result and the signed report")
    sign.add_argument("--db-url", default=None, help="database URL (see `liverhealth db --help`)")
    sign.set_defaults(func=cmd_sign)
