"""The web tests' server: a real `liverhealth web` process (tests/helpers/web.py) with a real
chat-completions server for the drafts."""

from __future__ import annotations

import pytest

from tests.helpers.chat_server import running_chat_server
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
