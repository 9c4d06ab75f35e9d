#!/usr/bin/env python3
"""Benchmark `relay copy` against `skopeo copy --all` between two local registries.

A ~200 MB image in 4 layers is pushed to registry A. Each round copies it with relay and with
skopeo, alternating, each onto a fresh registry B; the median MB/s and the ratio are reported.
Then both copy again onto a destination that already holds the image: the table gives the
requests each tool made and the blob bytes it uploaded, read from the registries' access logs.

With plain registries a floor row shows the destination's ceiling: the same blobs moved by a
bare socket loop inside this process, no start-up, manifests or checks; a client can only add to
it.

Targets on a 2-core machine: relay >= 1.2x skopeo's MB/s; a warm re-copy uploads 0 blob bytes.

    python benchmarks/copy.py [--rounds 3] [--size-mb 200]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named copy.py, like the standard library module that tarfile imports: take the
# benchmarks folder off the path before anything imports it.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import compileall  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import requests  # noqa: E402

from relay.registry.credentials import ENV_MAP, EnvCredentials  # noqa: E402
from relay.sandbox.images import ImageFactory  # noqa: E402
from tests.fixtures.registries import Registry, RegistryFactory, generate_pki  # noqa: E402
from tests.fixtures.skopeo import Skopeo  # noqa: E402

LOG_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d+) \d+ "[^"]*" "(?P<ua>[^"]*)"'
)


def log_requests(log_file: str, agent: str, start: int) -> tuple[int, int]:
    """Requests by `agent` after byte offset `start`, and how many of them uploaded blob data."""
    with open(log_file, "rb") as fh:
        fh.seek(start)
        text = fh.read().decode("utf-8", "replace")
    requests = uploads = 0
    for m in LOG_LINE.finditer(text):
        if agent not in m["ua"]:
            continue
        requests += 1
        if m["method"] in ("PUT", "PATCH") and "/blobs/uploads/" in m["path"]:
            uploads += 1
    return requests, uploads


def discard(registry: Registry) -> None:
    """Stop a destination and delete what it stored. Left on tmpfs, each round's 210 MB made
    the next round's registry slower (0.65 s to 0.98 s a copy, for both tools alike)."""
    registry.stop()
    shutil.rmtree(registry.data_dir, ignore_errors=True)


PEAK_RSS_MB: list[float] = []
RELAY_CPU: list[float] = []


RELAY_ENV: dict[str, str] = {}


def trust(*registries: Registry) -> None:
    """Credentials and the test CA for relay's child processes, as a user would set them."""
    entries = json.loads(RELAY_ENV.get(ENV_MAP, "{}"))  # earlier calls' registries stay
    entries.update({r.host: f"{r.username}:{r.password}" for r in registries if r.username})
    RELAY_ENV.update(EnvCredentials.environment(entries))
    for registry in registries:
        if registry.ca_file:
            RELAY_ENV["REQUESTS_CA_BUNDLE"] = registry.ca_file


def _headers(sock: socket.socket) -> tuple[str, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("floor: connection closed before the headers ended")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def _floor_blob(source: Registry, dst: Registry, digest: str, size: int, location: str) -> None:
    """GET from the source and PUT to the destination over bare sockets, 1 MiB at a time."""
    src_host, src_port = source.host.rsplit(":", 1)
    dst_host, dst_port = dst.host.rsplit(":", 1)
    with (
        socket.create_connection((src_host, int(src_port))) as down,
        socket.create_connection((dst_host, int(dst_port))) as up,
    ):
        down.sendall(
            f"GET /v2/bench/big/blobs/{digest} HTTP/1.1\r\nHost: {source.host}\r\n\r\n".encode()
        )
        head, first = _headers(down)
        if " 200 " not in head.split("\r\n", 1)[0]:
            raise SystemExit(f"floor: GET {digest}: {head.splitlines()[0]}")
        parts = urlsplit(location)
        up.sendall(
            f"PUT {parts.path}?{parts.query}&digest={digest} HTTP/1.1\r\nHost: {dst.host}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n".encode()
            + first
        )
        left = size - len(first)
        buffer = memoryview(bytearray(1 << 20))
        while left:
            n = down.recv_into(buffer[: min(left, len(buffer))])
            if not n:
                raise SystemExit(f"floor: GET {digest} ended early")
            up.sendall(buffer[:n])
            left -= n
        head, _ = _headers(up)
        if " 201 " not in head.split("\r\n", 1)[0]:
            raise SystemExit(f"floor: PUT {digest}: {head.splitlines()[0]}")


def floor_copy(source: Registry, dst: Registry, blobs: dict[str, int]) -> float:
    """The destination's ceiling: every blob at once over bare sockets, in this process, with
    no start-up, no manifests and no checks. Upload sessions are opened before the clock."""
    locations = {
        digest: requests.post(f"{dst.url}/v2/bench/big/blobs/uploads/", timeout=10).headers[
            "Location"
        ]
        for digest in blobs
    }
    threads = [
        threading.Thread(target=_floor_blob, args=(source, dst, d, size, locations[d]))
        for d, size in blobs.items()
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def relay_copy(src: str, dst: str) -> float:
    """One `relay copy` in a child process; records the child's peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", "copy", src, dst],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **RELAY_ENV, "PYTHONPATH": str(ROOT)},
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"relay copy failed: {proc.stderr.read().decode()[-2000:]}")
    PEAK_RSS_MB.append(usage.ru_maxrss / 1024)  # Linux reports KiB
    RELAY_CPU.append(usage.ru_utime + usage.ru_stime)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument(
        "--flavour",
        choices=("plain", "tls"),
        default="plain",
        help="plain HTTP registries, or TLS with htpasswd (as real registries are)",
    )
    args = parser.parse_args()
    # relay starts as an installed package would, from bytecode: with PYTHONDONTWRITEBYTECODE
    # set (as on these machines) an edited module is otherwise recompiled on every run.
    compileall.compile_dir(ROOT / "relay", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        factory = RegistryFactory(base / "registries", generate_pki(base / "pki"))
        images = ImageFactory(base / "blobs")
        skopeo = Skopeo(base / "skopeo")
        try:
            source = factory(args.flavour, name="source")
            pushed = images.push_benchmark_image(
                source, "bench/big", "1", total_size=args.size_mb * 1024 * 1024, layer_count=4
            )
            size = pushed.image.total_size
            trust(source)
            src_ref = f"{source.host}/bench/big:1"
            relay_s: list[float] = []
            skopeo_s: list[float] = []
            skopeo_cpu: list[float] = []
            floor_s: list[float] = []
            sizes = {b.digest: b.size for b in [pushed.image.config, *pushed.image.layers] if b}
            for round_ in range(args.rounds):
                if args.flavour == "plain":
                    dst = factory(args.flavour, name=f"floor-{round_}")
                    floor_s.append(floor_copy(source, dst, sizes))
                    discard(dst)
                dst = factory(args.flavour, name=f"relay-{round_}")
                trust(dst)
                relay_s.append(relay_copy(src_ref, f"{dst.host}/bench/big:1"))
                discard(dst)
                dst = factory(args.flavour, name=f"skopeo-{round_}")
                skopeo.clear_blob_info_cache()
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                skopeo.copy(src_ref, source, f"{dst.host}/bench/big:1", dst)
                skopeo_s.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                skopeo_cpu.append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
                discard(dst)
            relay_mbs = size / 1e6 / statistics.median(relay_s)
            skopeo_mbs = size / 1e6 / statistics.median(skopeo_s)

            warm = factory(args.flavour, name="warm")
            trust(warm)
            relay_copy(src_ref, f"{warm.host}/bench/big:1")
            skopeo.copy(src_ref, source, f"{warm.host}/bench/big:2", warm)
            rows = []
            for tool, run in (
                ("relay", lambda: relay_copy(src_ref, f"{warm.host}/bench/big:1")),
                ("skopeo", lambda: skopeo.copy(src_ref, source, f"{warm.host}/bench/big:2", warm)),
            ):
                offsets = (os.path.getsize(source.log_file), os.path.getsize(warm.log_file))
                start = time.perf_counter()
                run()
                seconds = time.perf_counter() - start
                agent = "relay-registry" if tool == "relay" else "skopeo"
                src_req, _ = log_requests(source.log_file, agent, offsets[0])
                dst_req, uploads = log_requests(warm.log_file, agent, offsets[1])
                rows.append((tool, seconds, src_req + dst_req, uploads))
        finally:
            factory.close()

    print(
        f"relay copy vs skopeo copy --all: {size / 1e6:.0f} MB image, 4 layers, "
        f"{args.rounds} rounds, {args.flavour} registries in {tempfile.gettempdir()}"
    )
    # CPU: the copying process's own user+system time; the registries use the rest.
    print(f"{'tool':<8} {'median s':>9} {'MB/s':>8} {'CPU s':>6}  runs (s)")
    print(
        f"{'relay':<8} {statistics.median(relay_s):>9.2f} {relay_mbs:>8.1f} "
        f"{statistics.median(RELAY_CPU[: len(relay_s)]):>6.2f}  "
        + " ".join(f"{s:.2f}" for s in relay_s)
    )
    print(
        f"{'skopeo':<8} {statistics.median(skopeo_s):>9.2f} {skopeo_mbs:>8.1f} "
        f"{statistics.median(skopeo_cpu):>6.2f}  " + " ".join(f"{s:.2f}" for s in skopeo_s)
    )
    if floor_s:
        print(
            f"{'floor':<8} {statistics.median(floor_s):>9.2f} "
            f"{size / 1e6 / statistics.median(floor_s):>8.1f} {'':>6}  "
            + " ".join(f"{s:.2f}" for s in floor_s)
        )
    print(f"ratio relay/skopeo: {relay_mbs / skopeo_mbs:.2f}x (target >= 1.2x)")
    if floor_s:
        # What is left once the destination's ceiling is paid: start-up and protocol.
        print(
            "above the floor: "
            f"relay +{statistics.median(relay_s) - statistics.median(floor_s):.2f} s, "
            f"skopeo +{statistics.median(skopeo_s) - statistics.median(floor_s):.2f} s"
        )
    print(f"relay copy peak RSS: {max(PEAK_RSS_MB):.0f} MB for a {size / 1e6:.0f} MB image")
    print()
    print("warm destination (image already there)")
    print(f"{'tool':<8} {'seconds':>8} {'requests':>9} {'blob uploads':>13}")
    for tool, seconds, count, uploads in rows:
        print(f"{tool:<8} {seconds:>8.2f} {count:>9} {uploads:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
