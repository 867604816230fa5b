"""A real chat-completions HTTP server on 127.0.0.1 (plain JSON and SSE streaming) with failure modes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DRAFT_PIECES = [
    "Findings: the liver measures 1489.4 mL. ",
    "Seven hypodense lesions are segmented. ",
    "肝脏可见多发低密度病灶。",
    "Draft for radiologist review; not a medical device.",
]


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.mode = "ok"
        self.redirect_to = ""
        self.requests: list[dict] = []
        self.headers_seen: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        self.server.headers_seen.append(dict(self.headers))
        mode = self.server.mode
        if mode == "500":
            return self._send(500, b'{"error": {"message": "internal failure", "type": "server_error"}}')
        if mode == "401":
            return self._send(401, b'{"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}')
        if mode == "slow":
            time.sleep(3)
        if mode == "redirect":
            self.send_response(307)
            self.send_header("Location", self.server.redirect_to + self.path.removeprefix("/v1"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if not body.get("stream"):
            answer = {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "".join(DRAFT_PIECES)},
                    }
                ],
            }
            return self._send(200, json.dumps(answer).encode())
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if mode == "garbage":
            self.wfile.write(b"data: {this is not json\n\n")
            self.wfile.flush()
            return None
        pieces = [] if mode == "empty" else DRAFT_PIECES
        if mode == "trickle":  # an endless slow stream: a few characters every 0.2 s
            pieces = iter(lambda: "word ", None)
        if mode == "huge":  # a 10 MB answer
            pieces = ["x" * 10_000] * 1000
        for piece in pieces:
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.2 if mode == "trickle" else 0 if mode == "huge" else 0.02)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        return None


@contextmanager
def running_chat_server() -> Iterator[ChatServer]:
    """A ChatServer serving on its own thread for the block."""
    server = ChatServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
