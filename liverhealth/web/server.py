"""Run the web app with uvicorn (`liverhealth web`)."""

from __future__ import annotations

import ipaddress
import sys

from liverhealth.errors import InputError, LiverHealthError
from liverhealth.workflow import Workstation


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(workstation: Workstation, host: str, port: int, settings) -> int:
    """Serve until Ctrl+C. The results database is opened (and upgraded) before the port is."""
    try:
        import uvicorn

        from liverhealth.web.app import create_app
    except ImportError as exc:
        raise LiverHealthError(f"The web interface needs its extra ({exc}): pip install 'liverhealth[web]'.") from exc
    if not 1 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port (1-65535).")
    workstation.repository  # noqa: B018 - fail now, with one line, on an unreachable database
    app = create_app(workstation, settings)
    if not is_loopback(host):
        print(
            f"liverhealth web: listening on {host}, beyond this machine. Put it behind a TLS proxy (see the "
            "README) and start it with --secure-cookies.",
            file=sys.stderr,
        )
    print(f"LiverHealth web on http://{host}:{port}/ (Ctrl+C stops it)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
    return 0
