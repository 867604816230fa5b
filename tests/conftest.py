"""Shared fixtures: the real CT data in ../shared/data and small ONNX models built here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from liverhealth import config
from liverhealth.domain import CtVolume
from liverhealth.imaging import load
from liverhealth.imaging.dicom import read_mask_series
from tests.helpers.onnx_models import make_threshold_model, manifest_entry


def _data_root() -> Path:
    root = config.data_dir()
    if not (root / "3Dircadb1.1" / "PATIENT_DICOM.zip").is_file():
        pytest.fail(
            f"Real CT test data not found at {root}. Put the shared data folder beside the "
            "repository (../shared/data) or set LIVERHEALTH_DATA.",
            pytrace=False,
        )
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _data_root()


@pytest.fixture(scope="session")
def ircadb1(data_root: Path) -> CtVolume:
    return load(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")


@pytest.fixture(scope="session")
def ircadb1_masks(data_root: Path) -> dict[str, np.ndarray]:
    """Liver and tumour masks of 3Dircadb1.1 (bool [z, y, x])."""
    masks = data_root / "3Dircadb1.1" / "MASKS_DICOM.zip"
    liver = read_mask_series(masks, "MASKS_DICOM/liver/")
    tumours = [read_mask_series(masks, f"MASKS_DICOM/livertumor0{i}/") for i in range(1, 8)]
    return {"liver": liver, "tumours": tumours, "tumour": np.logical_or.reduce(tumours)}


@pytest.fixture()
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder with one tiny HU-threshold ONNX model, set as LIVERHEALTH_MODELS_DIR.

    The model labels HU in (20.5, 69.5) tumour and HU above 69.5 liver on the centre slice:
    not a real segmenter, but a deterministic one the engine cannot tell from a trained model.
    """
    folder = tmp_path / "models"
    folder.mkdir()
    make_threshold_model(folder / "threshold.onnx", size=(128, 128))
    manifest = {
        "schema": 1,
        "default": "threshold",
        "models": [manifest_entry("threshold", folder / "threshold.onnx", size=(128, 128))],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("LIVERHEALTH_MODELS_DIR", str(folder))
    monkeypatch.setenv("LIVERHEALTH_LOG_DIR", str(tmp_path / "logs"))
    return folder


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIVERHEALTH_CONFIG", str(tmp_path / "no-config.toml"))
    os.environ.setdefault("LIVERHEALTH_THREADS", "2")


_TIER_BY_PATH = {
    "tests/gui/": "gui",
    "tests/training/test_roundtrip.py": "training_env",
    "tests/web/test_browser.py": "browser",
    "tests/pacs/": "pacs",
}
_MYSQL_FIXTURES = {"private_mariadb", "secret_user"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tier markers from what a test needs: a MariaDB server (mysql), a Qt window (gui), the Paddle
    training venv (training_env); ``slow`` is set on the test itself."""
    root = Path(config.rootpath)
    for item in items:
        where = Path(item.fspath).relative_to(root).as_posix()
        for prefix, marker in _TIER_BY_PATH.items():
            if where.startswith(prefix):
                item.add_marker(marker)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (
            _MYSQL_FIXTURES & set(getattr(item, "fixturenames", ()))
            or params.get("db_url") == "mysql"
            or "mysql" in item.name
        ):
            item.add_marker("mysql")
