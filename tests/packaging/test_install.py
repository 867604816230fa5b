"""A non-editable install finds its models: they travel in the wheel as data files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from liverhealth import config

REPO = Path(__file__).resolve().parents[2]


def test_without_a_checkout_the_models_are_looked_for_in_the_prefix(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)  # an installed package: no models/ beside it
    monkeypatch.delenv("LIVERHEALTH_MODELS_DIR", raising=False)
    assert config.models_dir() == Path(sys.prefix) / "share" / "liverhealth" / "models"
    monkeypatch.setenv("LIVERHEALTH_MODELS_DIR", str(tmp_path / "mine"))
    assert config.models_dir() == tmp_path / "mine"


@pytest.mark.slow
def test_the_wheel_carries_every_shipped_model(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-w", str(tmp_path), "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("liverhealth-*.whl")
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    with zipfile.ZipFile(wheel) as archive:
        names = {Path(n).name: n for n in archive.namelist() if "/data/share/liverhealth/models/" in n}
        assert "manifest.json" in names and json.loads(archive.read(names["manifest.json"])) == manifest
        for entry in [*manifest["models"], *manifest.get("stages", [])]:  # a cascade's stages too
            assert hashlib.sha256(archive.read(names[entry["file"]])).hexdigest() == entry["sha256"]
        files = set(archive.namelist())
        for needed in (  # the web page, its viewer (from npm, by setup.sh) and every migration
            "liverhealth/web/static/index.html",
            "liverhealth/web/static/app.js",
            "liverhealth/web/static/vendor/niivue/niivue.umd.js",
            "liverhealth/storage/migrations/versions/0006_audit_sessions.py",
        ):
            assert needed in files, needed
