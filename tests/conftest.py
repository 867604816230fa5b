"""Shared fixtures: the real CT data in ../shared/data and small ONNX models built here."""

from __future__ import annotations

import inspect
import json
import os
import types
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


# Tier markers from what a test needs. The fixtures it requests (item.fixturenames holds the indirect
# ones too, so a module's own fixture built on data_root marks its tests `data`):
_MARKERS_BY_FIXTURE = {
    "data": {"data_root", "ircadb1", "ircadb1_masks", "ircadb1_record", "gt_result"},
    "mysql": {"private_mariadb", "secret_user"},
    "gui": {"qtbot"},
    "pacs": {"orthanc"},
}
_MYSQL_PARAM = "mysql"  # a parametrized backend (db_url, kind): the MariaDB on 127.0.0.1:3306
# Names in the code of the test or of a fixture it requests: the helpers that start a child process, and
# a wait on the real clock (seconds of wall time for a login back-off or a session timeout to pass):
_MARKERS_BY_NAME = {
    "subprocess": {"run_cli", "running_web_server", "subprocess"},
    "sleeps": {"sleep"},
}
# A test that needs something neither says (it runs the training venv or drives chromium through a module
# helper) carries its marker by hand, as `slow` is set by hand.


def _code_names(code: types.CodeType) -> set[str]:
    """The global, attribute and imported names a function's code uses, its nested functions' included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _names_used(item: pytest.Item) -> set[str]:
    functions = [getattr(item, "function", None)]
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    if fixtureinfo is not None:
        functions += [d.func for defs in fixtureinfo.name2fixturedefs.values() for d in defs]
    names: set[str] = set()
    for function in functions:
        code = getattr(inspect.unwrap(function), "__code__", None) if function is not None else None
        if code is not None:
            names |= _code_names(code)
    return names


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by what it needs: the real CT data (data), a MariaDB server (mysql), a Qt window
    (gui), Orthanc (pacs), a child process such as the `liverhealth` command or its web server (subprocess),
    the real clock to advance (sleeps)."""
    for item in items:
        needs = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _MARKERS_BY_FIXTURE.items():
            if needs & fixtures:
                item.add_marker(marker)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(isinstance(value, str) and value == _MYSQL_PARAM for value in params.values()):
            item.add_marker("mysql")
        names = _names_used(item)
        for marker, used in _MARKERS_BY_NAME.items():
            if names & used:
                item.add_marker(marker)
