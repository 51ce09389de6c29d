"""The per-user configuration file: where the API is and the credentials to reach it.

It holds a bearer token and what renews it (a person's refresh token, with the id of the app
they signed in through, or an integrator client's id and secret), so it is written with 0600
permissions in a 0700 folder, atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    """``$SOCIALCTL_CONFIG``, else ``$XDG_CONFIG_HOME/socialctl/config.json`` (``~/.config``)."""
    explicit = os.environ.get("SOCIALCTL_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "socialctl" / "config.json"


@dataclass
class Config:
    url: str = DEFAULT_URL
    access_token: str | None = None
    expires_at: float | None = None
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    persona: str | None = None
    persona_id: str | None = None
    scope: str | None = None
    app_id: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.access_token is not None

    def who(self) -> str:
        if self.client_id:
            return f"client {self.client_id} (scope: {self.scope or '-'})"
        if self.app_id:
            name = f"{self.username}, " if self.username else ""
            persona = f"{self.persona} persona {self.persona_id}"
            return f"{name}{persona} through app {self.app_id} (scope: {self.scope or '-'})"
        if self.username:
            return f"{self.username}, {self.persona} persona {self.persona_id}"
        return "nobody"


def load(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return Config()
    known = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in data.items() if k in known})


def save(config: Config, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(config), handle, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove(path: Path | None = None) -> bool:
    path = path or config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
