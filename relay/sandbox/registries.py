"""Real ``docker-registry`` (distribution 2.8) processes on 127.0.0.1, and the test CA.

Used by the sandbox (`relay sandbox up`, `make demo`) for the upstream, ACR and Harbor
stand-ins, and by the tests' fixtures (tests/fixtures/registries.py). Flavours: ``plain`` (HTTP,
no auth), ``tls`` (HTTPS with the test CA + htpasswd Basic) and ``token`` (HTTPS + bearer tokens
from an in-process token server, relay.sandbox.tokens).

A missing tool (docker-registry, htpasswd) is an error naming the Debian package to install.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from relay.sandbox.tokens import TokenServer, TokenUser

# Which Debian package provides each external tool; used in the failure message.
TOOL_PACKAGES = {
    "docker-registry": "docker-registry",
    "htpasswd": "apache2-utils",
    "skopeo": "skopeo",
}

# The three flavours the named fixtures use; the factory accepts the same names.
FLAVOURS = ("plain", "tls", "token")

READY_TIMEOUT = 15.0  # seconds; a healthy 2.8 registry answers /v2/ in ~20 ms
STOP_TIMEOUT = 5.0


class MissingTool(RuntimeError):
    """A program the sandbox runs (docker-registry, htpasswd, skopeo, buildah) is missing."""


def require_tool(name: str) -> str:
    """Absolute path of ``name``, or MissingTool naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        pkg = TOOL_PACKAGES.get(name, name)
        raise MissingTool(
            f"required tool {name!r} not found on PATH; install it with "
            f"`apt-get install -y {pkg}` (make demo and make test install it)"
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind 0, read, release).

    There is a window in which another process can take it; :func:`start_registry` retries on
    "address already in use" to cover that.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http_session() -> requests.Session:
    """A requests session that ignores the environment.

    This machine exports REQUESTS_CA_BUNDLE, which overrides ``Session.verify`` when
    ``trust_env`` is on (psf/requests#3829), and proxy variables must never route 127.0.0.1
    traffic elsewhere. Pass ``verify=`` per request as well.
    """
    session = requests.Session()
    session.trust_env = False
    return session


# --------------------------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestPKI:
    """A throw-away CA and one server certificate for 127.0.0.1 / localhost."""

    __test__ = False  # not a test class, despite the name

    ca_file: str  # CA certificate PEM: what clients trust
    cert_file: str  # server certificate PEM (SAN IP:127.0.0.1, DNS:localhost)
    key_file: str  # server private key PEM
    cert_dir: str  # a directory holding only ca.crt, the layout skopeo's --cert-dir expects


def _write_pem(path: Path, data: bytes, private: bool = False) -> str:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return str(path)


def generate_pki(directory: Path) -> TestPKI:
    """Create a CA and a server certificate signed by it (RSA 2048, 30 days)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    # Back-dated a day so a slightly skewed clock in CI cannot make them "not yet valid".
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=30)

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            # Python's ssl module (and Go) match an IP URL only against an IP SAN, never CN.
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_file = _write_pem(directory / "ca.crt", ca_cert.public_bytes(pem))
    cert_file = _write_pem(directory / "server.crt", cert.public_bytes(pem))
    key_file = _write_pem(
        directory / "server.key",
        key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
        private=True,
    )
    # skopeo treats every *.crt in --cert-dir as a CA and *.cert/*.key as a client pair, so the
    # cert dir must hold the CA alone (the server key next to it would be mistaken for one).
    cert_dir = directory / "certdir"
    cert_dir.mkdir(exist_ok=True)
    shutil.copyfile(ca_file, cert_dir / "ca.crt")
    return TestPKI(ca_file, cert_file, key_file, str(cert_dir))


# --------------------------------------------------------------------------------------------
# Registry processes
# --------------------------------------------------------------------------------------------


@dataclass
class Registry:
    """A running registry. The first ten fields are the public API other tests code against."""

    name: str
    host: str  # "127.0.0.1:PORT"
    url: str  # "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT"
    auth: str  # "none" | "basic" | "token"
    username: str | None
    password: str | None
    ca_file: str | None  # path to the CA PEM for TLS registries, else None
    data_dir: str  # storage.filesystem.rootdirectory
    token_server: TokenServer | None  # the TokenServer for auth == "token"
    # Extras (defaults so the API above stays constructible as documented).
    cert_dir: str | None = None  # directory with only ca.crt, for skopeo --cert-dir
    config_file: str = ""
    log_file: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def tls(self) -> bool:
        return self.url.startswith("https://")

    @property
    def verify(self) -> str | bool:
        """The ``verify=`` value for requests: the CA file for TLS registries."""
        return self.ca_file if self.ca_file is not None else True

    @property
    def credentials(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    def ref(self, repo: str, tag_or_digest: str = "latest") -> str:
        """``HOST/repo:tag`` or ``HOST/repo@sha256:...``."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.host}/{repo}{sep}{tag_or_digest}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = Path(self.log_file).read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Terminate the process (idempotent). The token server, if any, is stopped too."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        if self.token_server is not None:
            self.token_server.stop()


def _config_yaml(
    *,
    port: int,
    data_dir: Path,
    secret: str,
    tls: TestPKI | None,
    htpasswd_file: Path | None,
    token: TokenServer | None,
    rootcertbundle: Path | None,
) -> str:
    # Hand-written YAML (not PyYAML) keeps this plugin free of extra imports; every value is a
    # path or token we generated, none needs quoting beyond what is done here.
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        # The access log stays on: when a relay test fails, the request lines in the log tail
        # say what the client actually sent.
        "storage:",
        "  filesystem:",
        f'    rootdirectory: "{data_dir}"',
        "  delete:",
        "    enabled: true",
        "  cache:",
        "    blobdescriptor: inmemory",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",  # no background purge goroutine touching tmp during tests
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f'  secret: "{secret}"',
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
    ]
    if tls is not None:
        lines += [
            "  tls:",
            f'    certificate: "{tls.cert_file}"',
            f'    key: "{tls.key_file}"',
        ]
    lines += ["health:", "  storagedriver:", "    enabled: false"]
    if htpasswd_file is not None:
        lines += [
            "auth:",
            "  htpasswd:",
            "    realm: relay-test-realm",
            f'    path: "{htpasswd_file}"',
        ]
    elif token is not None:
        lines += [
            "auth:",
            "  token:",
            f'    realm: "{token.realm}"',
            f'    service: "{token.service}"',
            f'    issuer: "{token.issuer}"',
            f'    rootcertbundle: "{rootcertbundle}"',
        ]
    return "\n".join(lines) + "\n"


def _htpasswd_line(user: str, password: str) -> str:
    htpasswd = require_tool("htpasswd")
    # -B: distribution only accepts bcrypt entries. -C 5: bcrypt's minimum-ish cost keeps each
    # registry start fast; these are throw-away test passwords.
    out = subprocess.run(
        [htpasswd, "-Bbn", "-C", "5", user, password],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip() + "\n"


def _registry_env() -> dict[str, str]:
    # distribution maps REGISTRY_* variables onto config keys (REGISTRY_HTTP_ADDR wins over the
    # file), so a stray one in a developer's shell would silently change the registry.
    return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}


def _wait_ready(reg: Registry, expected: set[int], timeout: float = READY_TIMEOUT) -> None:
    session = http_session()
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    try:
        while time.monotonic() < deadline:
            if reg.process is None or reg.process.poll() is not None:
                rc = None if reg.process is None else reg.process.returncode
                raise RegistryStartError(
                    f"registry {reg.name} exited (rc={rc}) before becoming ready\n"
                    f"--- {reg.log_file} (tail) ---\n{reg.log_tail()}",
                    address_in_use="address already in use" in reg.log_tail(),
                )
            try:
                resp = session.get(reg.url + "/v2/", verify=reg.verify, timeout=2)
            except requests.RequestException as exc:
                last_error = repr(exc)
            else:
                if resp.status_code in expected:
                    return
                last_error = f"HTTP {resp.status_code}: {resp.text[:200]}"
            time.sleep(0.01)
    finally:
        session.close()
    raise RegistryStartError(
        f"registry {reg.name} not ready at {reg.url}/v2/ after {timeout:.0f}s "
        f"(last: {last_error})\n--- {reg.log_file} (tail) ---\n{reg.log_tail()}"
    )


class RegistryStartError(RuntimeError):
    def __init__(self, message: str, address_in_use: bool = False) -> None:
        super().__init__(message)
        self.address_in_use = address_in_use


def start_registry(
    base_dir: Path,
    *,
    name: str,
    flavour: str = "plain",
    pki: TestPKI | None = None,
    tls: bool | None = None,
    username: str = "relay",
    password: str | None = None,
    anonymous_pull: tuple[str, ...] = ("public/",),
    extra_token_users: dict[str, TokenUser] | None = None,
    service: str | None = None,
    data_dir: Path | None = None,
    attempts: int = 3,
) -> Registry:
    """Start one registry process and wait until ``/v2/`` answers.

    flavour: "plain" (no auth), "tls" (htpasswd Basic), "token" (bearer tokens).
    tls: defaults to False for "plain" and True for the others; "plain" + tls=True gives an
    HTTPS registry without auth, "tls" + tls=False gives Basic auth over plain HTTP.
    service: the token flavour's ``service`` (what the Bearer challenge names); ACR's stand-in
    uses ``registry.aliyuncs.com:<region>:<id>``, the form Harbor's ali-acr adapter parses.
    data_dir: storage to serve instead of a fresh one (two registries on one storage show the
    same images under two challenges, e.g. ACR's personal and Enterprise endpoints).
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown registry flavour {flavour!r}; expected one of {FLAVOURS}")
    binary = require_tool("docker-registry")
    use_tls = (flavour != "plain") if tls is None else tls
    if use_tls and pki is None:
        raise ValueError("a TLS registry needs the test PKI")
    auth = {"plain": "none", "tls": "basic", "token": "token"}[flavour]

    reg_dir = base_dir / name
    reg_dir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or reg_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = reg_dir / "registry.log"
    config_file = reg_dir / "config.yml"

    user: str | None = None
    pw: str | None = None
    htpasswd_file: Path | None = None
    token: TokenServer | None = None
    rootcertbundle: Path | None = None
    if auth != "none":
        user = username
        pw = password or secrets.token_urlsafe(12)
    if auth == "basic":
        assert user is not None and pw is not None
        htpasswd_file = reg_dir / "htpasswd"
        htpasswd_file.write_text(_htpasswd_line(user, pw))
    elif auth == "token":
        assert user is not None and pw is not None
        users = {user: TokenUser(pw)}
        users.update(extra_token_users or {})
        token = TokenServer(
            users=users,
            service=service or f"relay-test-{name}",
            issuer=f"relay-test-issuer-{name}",
            anonymous_pull=anonymous_pull,
            tls_cert=pki.cert_file if (use_tls and pki) else None,
            tls_key=pki.key_file if (use_tls and pki) else None,
        ).start()
        rootcertbundle = Path(token.write_rootcertbundle(str(reg_dir / "token-signer.crt")))

    scheme = "https" if use_tls else "http"
    expected = {200} if auth == "none" else {401}
    last_exc: RegistryStartError | None = None
    for _ in range(attempts):
        port = free_port()
        config_file.write_text(
            _config_yaml(
                port=port,
                data_dir=data_dir,
                secret=secrets.token_hex(16),
                tls=pki if use_tls else None,
                htpasswd_file=htpasswd_file,
                token=token,
                rootcertbundle=rootcertbundle,
            )
        )
        log = open(log_file, "ab")  # the child keeps its own descriptor; ours is closed below
        try:
            proc = subprocess.Popen(
                [binary, "serve", str(config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_registry_env(),
                # Own session: a Ctrl-C in the pytest terminal must not kill registries before
                # teardown has run, and teardown signals this PID only.
                start_new_session=True,
            )
        finally:
            log.close()
        reg = Registry(
            name=name,
            host=f"127.0.0.1:{port}",
            url=f"{scheme}://127.0.0.1:{port}",
            auth=auth,
            username=user,
            password=pw,
            ca_file=pki.ca_file if (use_tls and pki) else None,
            data_dir=str(data_dir),
            token_server=token,
            cert_dir=pki.cert_dir if (use_tls and pki) else None,
            config_file=str(config_file),
            log_file=str(log_file),
            process=proc,
        )
        try:
            _wait_ready(reg, expected)
            return reg
        except RegistryStartError as exc:
            # Only keep the token server for a retry; the registry process is gone or stuck.
            saved_token, reg.token_server = reg.token_server, None
            reg.stop()
            reg.token_server = saved_token
            last_exc = exc
            if not exc.address_in_use:
                break
    if token is not None:
        token.stop()
    assert last_exc is not None
    raise last_exc
