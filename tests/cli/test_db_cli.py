"""`liverhealth segment --save-db` and `liverhealth db ...` as real processes."""

from __future__ import annotations

import json
import uuid

import nibabel as nib
import numpy as np
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.databases import MYSQL_HOST, MYSQL_PORT, free_port, mysql_root


@pytest.mark.slow
def test_save_list_show_export_delete_sqlite(data_root, models_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    series = str(data_root / "totalsegmentator" / "example_ct_dicom")
    result = run_cli("segment", series, "--out", str(tmp_path / "out"), "--save-db", "--db-url", url)
    assert result.returncode == 0, result.stderr
    assert "Saved as result 1" in result.stdout
    listing = run_cli("db", "--db-url", url, "list")
    assert listing.returncode == 0 and "threshold" in listing.stdout and "20 slices" in listing.stdout
    show = run_cli("db", "--db-url", url, "show", "1")
    assert show.returncode == 0 and "Result 1" in show.stdout
    export = run_cli("db", "--db-url", url, "export", "1", "--out", str(tmp_path / "exported"))
    assert export.returncode == 0, export.stderr
    original = nib.load(str(tmp_path / "out" / "labels.nii.gz"))
    exported = nib.load(str(tmp_path / "exported" / "labels.nii.gz"))
    assert np.array_equal(np.asarray(original.dataobj), np.asarray(exported.dataobj))
    np.testing.assert_allclose(original.affine, exported.affine)
    confidence = [nib.load(str(tmp_path / d / "confidence.nii.gz")).dataobj for d in ("out", "exported")]
    assert np.array_equal(np.asarray(confidence[0]), np.asarray(confidence[1]))
    doc = json.loads((tmp_path / "exported" / "measurements.json").read_text())
    assert doc["measurements"] == json.loads((tmp_path / "out" / "measurements.json").read_text())["measurements"]
    assert run_cli("db", "--db-url", url, "delete", "1").returncode == 0
    assert "No saved results" in run_cli("db", "--db-url", url, "list").stdout
    missing = run_cli("db", "--db-url", url, "show", "1")
    assert missing.returncode == 2 and "No saved result 1" in missing.stderr


@pytest.mark.mysql
def test_failed_save_keeps_outputs_and_retry_works(data_root, models_dir, tmp_path):
    password = f"Pw-{uuid.uuid4().hex[:10]}"
    dead = f"mysql+pymysql://root:{password}@127.0.0.1:{free_port()}/liverhealth"
    out = tmp_path / "out"
    result = run_cli(
        "segment",
        str(data_root / "dcmqi" / "ct-3slice"),
        "--out",
        str(out),
        "--save-db",
        "--db-url",
        dead,
        env_extra={"LIVERHEALTH_DB_TIMEOUT": "2"},
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("liverhealth:")]
    assert len(lines) == 1 and "cannot reach the server" in lines[0] and "db save" in lines[0]
    assert password not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert (out / "labels.nii.gz").is_file() and (out / "measurements.json").is_file()
    name = f"lh_retry_{uuid.uuid4().hex[:8]}"
    good = f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    try:
        retry = run_cli("db", "--db-url", good, "save", str(out))
        assert retry.returncode == 0, retry.stderr
        listing = run_cli("db", "--db-url", good, "list")
        assert "3 slices" in listing.stdout
        with mysql_root(name) as connection, connection.cursor() as cursor:
            for table in ("patient", "study", "segmentation_result", "report"):
                cursor.execute(f"SELECT * FROM {table}")
                for row in cursor.fetchall():
                    assert password not in repr(row)
    finally:
        with mysql_root() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


def test_db_save_twice_keeps_one_and_refuses_a_tampered_folder(data_root, models_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    out = tmp_path / "out"
    assert run_cli("segment", str(data_root / "dcmqi" / "ct-3slice"), "--out", str(out)).returncode == 0
    first = run_cli("db", "--db-url", url, "save", str(out))
    again = run_cli("db", "--db-url", url, "save", str(out))
    assert first.returncode == 0 and again.returncode == 0
    assert "as result 1" in first.stdout and "as result 1" in again.stdout
    image = nib.load(str(out / "labels.nii.gz"))
    tampered = np.asarray(image.dataobj).copy()
    tampered[:10, :10, :] = 1
    nib.save(nib.Nifti1Image(tampered, image.affine), str(out / "labels.nii.gz"))
    refused = run_cli("db", "--db-url", url, "save", str(out))
    assert refused.returncode == 2 and "does not fit measurements.json" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr


def test_db_save_of_a_folder_with_an_unreadable_label_map(data_root, models_dir, tmp_path):
    out = tmp_path / "out"
    assert run_cli("segment", str(data_root / "dcmqi" / "ct-3slice"), "--out", str(out)).returncode == 0
    (out / "labels.nii.gz").write_text("not a NIfTI file")
    refused = run_cli("db", "--db-url", f"sqlite:///{tmp_path / 'r.db'}", "save", str(out))
    assert refused.returncode == 2 and "not a complete, readable" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr


@pytest.mark.slow
def test_db_backup_and_restore_through_the_command_line(data_root, models_dir, tmp_path):
    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    series = str(data_root / "dcmqi" / "ct-3slice")
    assert run_cli("segment", series, "--out", str(tmp_path / "out"), "--save-db", "--db-url", source).returncode == 0
    backup_file = tmp_path / "backups" / "results.lhbackup"
    backup_file.parent.mkdir()
    made = run_cli("db", "--db-url", source, "backup", str(backup_file))
    assert made.returncode == 0, made.stderr
    assert "1 result(s)" in made.stdout and "keep it as safe" in made.stdout
    assert oct(backup_file.stat().st_mode & 0o777) == "0o600"
    restored = run_cli("db", "--db-url", target, "restore", str(backup_file))
    assert restored.returncode == 0, restored.stderr
    assert "1 result(s)" in restored.stdout
    listings = [run_cli("db", "--db-url", url, "list").stdout.splitlines()[1:] for url in (source, target)]
    assert listings[0] == listings[1] and sum(line.startswith("    ") for line in listings[0]) == 1
    audit = run_cli("db", "--db-url", target, "audit").stdout
    assert " backup " in audit and " restore " in audit  # the source's trail came along, and the restore was added
    again = run_cli("db", "--db-url", target, "restore", str(backup_file))
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "not empty" in again.stderr and "Traceback" not in again.stderr
    assert run_cli("db", "--db-url", target, "list").stdout.splitlines()[1:] == listings[1]  # left as it was
    (tmp_path / "junk.zip").write_bytes(b"not a backup")
    junk = run_cli("db", "--db-url", f"sqlite:///{tmp_path / 'c.db'}", "restore", str(tmp_path / "junk.zip"))
    assert junk.returncode == 2 and len(junk.stderr.strip().splitlines()) == 1
