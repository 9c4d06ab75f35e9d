"""The copy a replication task makes, done with ``skopeo copy --all --preserve-digests``.

Hermetic like the tests' skopeo oracle: per-copy policy.json, registries.conf, auth file, HOME,
TMPDIR and blob-info-cache in a private temporary directory that is removed afterwards; proxy
variables dropped. Credentials go into the auth file (mode 0600), never onto the command line,
and every known secret is masked in what the task log keeps.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
MASK = "*****"


@dataclass(frozen=True)
class Endpoint:
    """One side of a copy: where, how to trust it, and who to be."""

    host: str  # "127.0.0.1:PORT" (already resolved)
    tls: bool
    verify: str | bool  # CA file, True (system trust) or False (insecure)
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CopyResult:
    ok: bool
    command: str  # the command line as run (no secrets: they are in the auth file)
    output: str  # stdout + stderr, secrets masked


def mask(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def skopeo_binary() -> str:
    path = shutil.which("skopeo")
    if path is None:
        raise FileNotFoundError("skopeo not found on PATH (apt-get install skopeo)")
    return path


class Copier:
    def __init__(self, workdir: str | Path, timeout: float = 300.0) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout

    def _flags(self, side: str, ep: Endpoint, home: Path) -> list[str]:
        if not ep.tls or ep.verify is False:
            return [f"--{side}tls-verify=false"]
        flags = [f"--{side}tls-verify=true"]
        if isinstance(ep.verify, str):
            certs = home / f"certs-{side.rstrip('-')}"
            certs.mkdir()
            shutil.copyfile(ep.verify, certs / "ca.crt")
            flags += [f"--{side}cert-dir", str(certs)]
        return flags

    def copy(
        self, src: Endpoint, src_repo: str, dst: Endpoint, dst_repo: str, tag: str
    ) -> CopyResult:
        binary = skopeo_binary()
        home = Path(tempfile.mkdtemp(prefix="copy-", dir=self.workdir))
        try:
            for d in ("home", "tmp", "xdg", "registries.d"):
                (home / d).mkdir()
            (home / "policy.json").write_text(
                json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
            )
            (home / "registries.conf").write_text(
                'unqualified-search-registries = []\nshort-name-mode = "enforcing"\n'
            )
            auths: dict[str, dict[str, str]] = {}
            for ep in (src, dst):
                if ep.username is not None and ep.password is not None:
                    raw = f"{ep.username}:{ep.password}".encode()
                    auths[ep.host] = {"auth": base64.b64encode(raw).decode()}
            authfile = home / "auth.json"
            fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"auths": auths}, fh)
            argv = [
                binary,
                "--policy",
                str(home / "policy.json"),
                "--registries.d",
                str(home / "registries.d"),
                "--tmpdir",
                str(home / "tmp"),
                "copy",
                "--all",
                "--preserve-digests",
                "--retry-times",
                "0",
                "--src-authfile",
                str(authfile),
                "--dest-authfile",
                str(authfile),
                *self._flags("src-", src, home),
                *self._flags("dest-", dst, home),
                f"docker://{src.host}/{src_repo}:{tag}",
                f"docker://{dst.host}/{dst_repo}:{tag}",
            ]
            env = {
                k: v
                for k, v in os.environ.items()
                if k.lower() not in _PROXY_VARS
                and not k.startswith(("CONTAINERS_", "REGISTRY_AUTH_FILE", "_CONTAINERS_"))
            }
            env.update(
                {
                    "HOME": str(home / "home"),
                    "XDG_DATA_HOME": str(home / "xdg"),
                    "XDG_CONFIG_HOME": str(home / "home" / ".config"),
                    "XDG_RUNTIME_DIR": str(home / "home" / "run"),
                    "TMPDIR": str(home / "tmp"),
                    "CONTAINERS_REGISTRIES_CONF": str(home / "registries.conf"),
                    "REGISTRY_AUTH_FILE": str(authfile),
                }
            )
            if os.geteuid() == 0:
                # c/image keeps its blob-info-cache in /var/lib/containers for root; a non-zero
                # rootless UID moves it under XDG_DATA_HOME, inside this private directory.
                env["_CONTAINERS_ROOTLESS_UID"] = "1000"
            shown = " ".join(a for a in argv[7:])  # from "copy" on; paths only, no secrets
            try:
                proc = subprocess.run(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=self.timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return CopyResult(False, "skopeo " + shown, f"timed out after {self.timeout}s")
            output = (proc.stdout + proc.stderr).decode(errors="replace")
            secrets = (src.password, dst.password)
            return CopyResult(proc.returncode == 0, "skopeo " + shown, mask(output, secrets))
        finally:
            shutil.rmtree(home, ignore_errors=True)
