"""The web tests' server: a real `liverhealth web` process (tests/helpers/web.py) with a real
chat-completions server for the drafts."""

from __future__ import annotations

import json

import pytest

from tests.helpers.chat_server import running_chat_server
from tests.helpers.onnx_models import make_threshold_model, manifest_entry
from tests.helpers.web import PASSWORDS, WebClient, login, running_web_server

__all__ = ["PASSWORDS", "login"]


@pytest.fixture(scope="session")
def chat():
    with running_chat_server() as server:
        yield server


@pytest.fixture(scope="session")
def web_server(tmp_path_factory, chat):
    """(base URL, work folder, log path) of a running server; stopped at the end."""
    env = {"LIVERHEALTH_LLM_BASE_URL": chat.base_url, "LIVERHEALTH_LLM_API_KEY": "test-key-not-secret"}
    with running_web_server(tmp_path_factory.mktemp("web"), env) as server:
        yield server


@pytest.fixture()
def client(web_server):
    return WebClient(web_server[0])


@pytest.fixture(scope="session")
def cascade_server(tmp_path_factory):
    """(base URL, work folder, log path) of a server whose model is a two-stage cascade of threshold
    models (a coarse locator on the whole CT, then the model on its box), as the shipped models are."""
    root = tmp_path_factory.mktemp("web-cascade")
    models = root / "models"
    models.mkdir()
    make_threshold_model(models / "locator.onnx", (64, 64))
    make_threshold_model(models / "fine.onnx", (96, 96))
    locator = manifest_entry("locator", models / "locator.onnx", size=(64, 64))
    locator["input"]["pixel_mm"] = 6.0
    fine = manifest_entry("cascade", models / "fine.onnx", size=(96, 96))
    fine["input"]["roi"] = {"stage": "locator", "margin_mm": 10.0, "min_pixel_mm": 0.5}
    manifest = {"schema": 1, "default": "cascade", "models": [fine], "stages": [locator]}
    (models / "manifest.json").write_text(json.dumps(manifest))
    with running_web_server(root) as server:
        yield server
