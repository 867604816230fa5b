"""The peer comparison's own parts: process measurement, label read-back, honest labelling, a real run."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from bench import compare_peers
from liverhealth import config
from liverhealth.imaging.writers import save_labels_nifti


def test_run_measured_reports_exit_time_and_peak_memory():
    code = "import numpy as np, time; a = np.ones(300 * 2**20 // 8); time.sleep(0.3); raise SystemExit(4)"
    measured = compare_peers.run_measured([sys.executable, "-c", code])
    assert measured.returncode == 4
    assert measured.wall_s >= 0.3
    assert 300 <= measured.peak_rss_mb < 1000


def test_labels_read_back_on_the_ct_grid(tmp_path, ircadb1):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, ircadb1.shape, dtype=np.uint8)
    save_labels_nifti(labels, ircadb1, tmp_path / "l.nii.gz")
    assert np.array_equal(compare_peers.labels_on_grid(tmp_path / "l.nii.gz"), labels)


def test_rows_say_whether_the_model_saw_the_case():
    assert compare_peers.trained_on("A", "3Dircadb1.7") == "yes"
    assert compare_peers.trained_on("A", "3Dircadb1.1") == "no (held out)"
    assert compare_peers.trained_on("all", "3Dircadb1.1") == "yes"
    assert compare_peers.trained_on(None, "3Dircadb1.1").startswith("unknown")


@pytest.mark.slow
def test_shipped_model_on_a_real_case_without_the_peer(tmp_path, data_root):
    out = tmp_path / "out"
    code = compare_peers.main(
        [
            "--no-peer",
            "--data",
            str(data_root),
            "--cases",
            "3Dircadb1.1",
            "--models-dir",
            str(config.REPO_ROOT / "models"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    ours = [r for r in rows if r["tool"].startswith("LiverHealth")]
    assert ours and all(r["wall_s"] > 0 and r["peak_rss_mb"] > 50 for r in ours)
    assert all(0.5 < r["liver_dice"] <= 1 and r["reference_lesions"] == 7 for r in ours)
    peer = [r for r in rows if r["tool"] == compare_peers.PEER]
    assert peer[0]["note"] == "not run (--no-peer)" and peer[0]["liver_dice"] is None
    table = (out / "comparison.md").read_text()
    assert "3Dircadb1.1" in table and "not run" in table and (out / "comparison.png").stat().st_size > 1000


def test_peer_is_skipped_with_a_clear_message_without_python36(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_peers, "PEER_VENV", tmp_path / "venv-peer")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.delenv("PYTHON36", raising=False)
    message = compare_peers.ensure_peer()
    assert message is not None and "skipped" in message and "Python 3.6" in message
    assert "Traceback" not in message and not (tmp_path / "venv-peer").exists()
