"""Settings: defaults < config file (TOML in the user config dir) < environment < flags.

Only the settings the current modules need live here; each is read when asked for, so a
test or the GUI can change the environment and see it take effect.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import platformdirs

from liverhealth.errors import LiverHealthError

APP_NAME = "liverhealth"
REPO_ROOT = Path(__file__).resolve().parent.parent


def config_path() -> Path:
    """The TOML config file (it need not exist)."""
    override = os.environ.get("LIVERHEALTH_CONFIG")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def read_config_file() -> dict[str, Any]:
    """The config file's contents, or {} when there is none."""
    path = config_path()
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LiverHealthError(f"The config file {path} cannot be read ({exc}); fix or delete it.") from exc


def setting(key: str, env: str, default: str | None = None) -> str | None:
    """One setting: the environment wins over the config file, which wins over the default."""
    if os.environ.get(env):
        return os.environ[env]
    value = read_config_file().get(key)
    return str(value) if value not in (None, "") else default


def installed_models_dir() -> Path:
    """Where the shipped models are: the checkout's ``models/``, else (a non-editable install)
    ``PREFIX/share/liverhealth/models``, where pyproject's data-files put them."""
    checkout = REPO_ROOT / "models"
    if (checkout / "manifest.json").is_file():
        return checkout
    return Path(sys.prefix) / "share" / APP_NAME / "models"


def models_dir() -> Path:
    """Folder holding ``manifest.json`` and the ONNX files (LIVERHEALTH_MODELS_DIR or the config file
    override the installed models)."""
    return Path(setting("models_dir", "LIVERHEALTH_MODELS_DIR", str(installed_models_dir())))


def data_dir() -> Path:
    """Real CT test data (``../shared/data`` beside the repository by default)."""
    return Path(os.environ.get("LIVERHEALTH_DATA", str(REPO_ROOT.parent / "shared" / "data")))


def log_dir() -> Path:
    """Where unexpected errors are logged with their traceback."""
    return Path(os.environ.get("LIVERHEALTH_LOG_DIR") or platformdirs.user_log_dir(APP_NAME))


def log_exception(context: str) -> Path | None:
    """Append the traceback being handled to the log file; return the file (None if it cannot be written).

    For bugs only: the user sees one short line pointing here, developers get the traceback.
    """
    import traceback
    from datetime import datetime

    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "liverhealth.log"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{datetime.now().isoformat(timespec='seconds')} unexpected error in {context}\n")
            handle.write(traceback.format_exc())
        return path
    except OSError:
        return None


def update_config_file(changes: dict[str, str | None]) -> Path:
    """Set (or, with None/"", remove) the given keys of the config file and keep every other key.

    The file may hold an API key, so it is created readable by its owner only (0600) before a
    byte is written, and replaced whole (a crash leaves the old file, never half a new one).
    """
    import tomli_w

    path = config_path()
    values = read_config_file()
    for key, value in changes.items():
        if value in (None, ""):
            values.pop(key, None)
        else:
            values[key] = value
    text = tomli_w.dumps(values)
    tomllib.loads(text)  # what we write must read back
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(descriptor, 0o600)  # an old leftover temporary file keeps its mode otherwise
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise LiverHealthError(f"Could not save {path}: {exc.strerror or exc}.") from exc
    return path


IDENTITY_MODES = ("clinical", "research")
PSEUDONYM_KEY_HEX = 64  # a generated site key: 32 random bytes as hex


def identity_mode() -> str:
    """What the results database keeps of who a study is (LIVERHEALTH_IDENTITY or the config file's
    ``identity``): "clinical" (the default: patient name, ID, sex, birth date and the study's date,
    accession, description, institution, referring physician) or "research" (a keyed pseudonym of
    the patient ID instead, study dates shifted per patient, nothing else that identifies)."""
    mode = (setting("identity", "LIVERHEALTH_IDENTITY", "clinical") or "clinical").strip().lower()
    if mode not in IDENTITY_MODES:
        raise LiverHealthError(f"The identity setting must be 'clinical' or 'research', not {mode[:20]!r}.")
    return mode


def pseudonym_key() -> bytes:
    """The site's key for research pseudonyms (LIVERHEALTH_PSEUDONYM_KEY or the config file's
    ``pseudonym_key``). None set: one is made and kept in the config file (mode 0600). The same key
    must be on every workstation of a site that shares a database, or their priors do not group; a
    config file others can read is refused (the key would let them re-identify patients)."""
    key = os.environ.get("LIVERHEALTH_PSEUDONYM_KEY", "").strip()
    if not key:
        key = str(read_config_file().get("pseudonym_key") or "").strip()
        if key and config_path().stat().st_mode & 0o077:
            raise LiverHealthError(
                f"The config file {config_path()} holds the pseudonym key but others may read it: chmod 600 it."
            )
    if not key:
        import secrets

        key = secrets.token_hex(PSEUDONYM_KEY_HEX // 2)
        update_config_file({"pseudonym_key": key})
    if len(key) < 32:
        raise LiverHealthError("The pseudonym key must be at least 32 characters long (64 hex digits are made).")
    return key.encode("utf-8")
