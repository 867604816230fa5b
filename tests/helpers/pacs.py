"""A real PACS for the tests: Debian's Orthanc with its DICOMweb plugin, on 127.0.0.1 ports of its own,
with a config written here (HTTP basic auth, our AE title registered for C-FIND/C-GET/C-STORE)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from tests.helpers.databases import free_port
from tests.helpers.prerequisites import require

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "radiology", "pacs-secret-Kq7"
AET = "TESTPACS"


class OrthancServer:
    def __init__(self, root: Path) -> None:
        require(
            ORTHANC.is_file() and DICOMWEB_PLUGIN.is_file(),
            "Orthanc is missing: apt-get install orthanc orthanc-dicomweb (`bash scripts/test.sh` does as root)",
        )
        self.root = root
        self.http_port, self.dicom_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self) -> OrthancServer:
        storage = self.root / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "LiverHealthTestPACS",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": AET,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "DicomCheckCalledAet": True,
            "DicomModalities": {
                "liverhealth": {
                    "AET": "LIVERHEALTH",
                    "Host": "127.0.0.1",
                    "Port": 11112,
                    "AllowGet": True,
                    "AllowFind": True,
                    "AllowStore": True,
                    "AllowEcho": True,
                }
            },
            "DicomAlwaysAllowStore": True,
            "StableAge": 1,
            "HttpsVerifyPeers": False,
        }
        path = self.root / "orthanc.json"
        path.write_text(json.dumps(config))
        self.log = open(self.root / "orthanc.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([str(ORTHANC), str(path)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/system", auth=(USER, PASSWORD), timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"Orthanc did not start: {(self.root / 'orthanc.log').read_text()[-2000:]}")

    def upload(self, files: list[Path]) -> None:
        for file in files:
            response = httpx.post(f"{self.url}/instances", content=file.read_bytes(), auth=(USER, PASSWORD), timeout=60)
            response.raise_for_status()

    def instances(self) -> list[dict]:
        ids = httpx.get(f"{self.url}/instances", auth=(USER, PASSWORD), timeout=30).json()
        return [httpx.get(f"{self.url}/instances/{i}/simplified-tags", auth=(USER, PASSWORD)).json() for i in ids]

    def kill(self) -> None:
        """Stop it as a crash or a pulled cable would: at once, mid-transfer."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None
            self.log.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None
            self.log.close()
