from __future__ import annotations

import json

import pytest

from relay.config import lockfile as lock
from relay.config.lockfile import Lock, LockedTag
from relay.errors import InputError

from .helpers import DIGEST_A, DIGEST_B

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sample() -> Lock:
    lk = Lock()
    lk.put(
        "registry.k8s.io/pause", "3.9", LockedTag(DIGEST_A, INDEX, ("linux/arm64", "linux/amd64"))
    )
    lk.put(
        "docker.io/library/nginx", "1.27", LockedTag(DIGEST_B, MANIFEST, ("linux/amd64",), "rule")
    )
    lk.put("docker.io/library/nginx", "1.26", LockedTag(DIGEST_A, MANIFEST, ()))
    return lk


def test_round_trip_and_sorted() -> None:
    text = lock.dumps(sample())
    lines = text.splitlines()
    assert json.loads(lines[0])["relayLock"] == 1
    keys = [(json.loads(x)["source"], json.loads(x)["tag"]) for x in lines[1:]]
    assert keys == sorted(keys)
    again = lock.parse(text, "mirrors/images.lock")
    assert again.images == sample().images | {
        "registry.k8s.io/pause": {"3.9": LockedTag(DIGEST_A, INDEX, ("linux/amd64", "linux/arm64"))}
    }
    assert lock.dumps(again) == text


def test_deterministic_regardless_of_insertion_order() -> None:
    a = sample()
    b = Lock()
    for source in reversed(list(a.images)):
        for tag in reversed(list(a.images[source])):
            b.put(source, tag, a.images[source][tag])
    assert lock.dumps(a) == lock.dumps(b)


def test_line_numbers_in_errors() -> None:
    text = lock.dumps(sample()).splitlines()
    text[2] = text[2].replace(DIGEST_B, "sha256:zz")
    with pytest.raises(InputError) as exc:
        lock.parse("\n".join(text), "mirrors/images.lock")
    assert str(exc.value.problems[0]).startswith("mirrors/images.lock:3: invalid digest")


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ("[]", "record must be a JSON object"),
        ('{"source": "nginx"}', "missing or non-string 'tag'"),
        (
            '{"source": "nginx", "tag": "1", "digest": "%s", "mediaType": "%s"}'
            % (DIGEST_A, INDEX),
            "fully qualified",
        ),
        (
            '{"source": "docker.io/library/nginx", "tag": "1\\nRUN x", "digest": "%s", "mediaType": "%s"}'
            % (DIGEST_A, INDEX),
            "invalid tag",
        ),
        (
            '{"source": "docker.io/library/nginx", "tag": "1", "digest": "%s", "mediaType": "x"}'
            % DIGEST_A,
            "unsupported media type",
        ),
        (
            '{"source": "docker.io/library/nginx", "tag": "1", "digest": "%s", "mediaType": "%s", "extra": 1}'
            % (DIGEST_A, INDEX),
            "unknown field(s) extra",
        ),
        ("{not json", "not a JSON object"),
    ],
)
def test_bad_records(record: str, why: str) -> None:
    text = json.dumps(lock.HEADER) + "\n" + record + "\n"
    with pytest.raises(InputError) as exc:
        lock.parse(text, "mirrors/images.lock")
    message = str(exc.value.problems[0])
    assert message.startswith("mirrors/images.lock:2: ") and why in message


def test_bad_header() -> None:
    with pytest.raises(InputError, match=":1: not a relay lock"):
        lock.parse('{"something": 1}\n', "mirrors/images.lock")


def test_write_only_when_changed(tmp_path) -> None:
    (tmp_path / "mirrors").mkdir()
    assert lock.write(tmp_path, sample()) is True
    assert lock.write(tmp_path, sample()) is False
    assert lock.read(tmp_path).images == lock.parse(lock.dumps(sample()), "x").images


def test_configs_round_trip_and_are_checked() -> None:
    lk = Lock()
    lk.put(
        "docker.io/library/nginx",
        "1",
        LockedTag(DIGEST_A, INDEX, ("linux/amd64",), configs=(("linux/amd64", DIGEST_B),)),
    )
    text = lock.dumps(lk)
    assert f'"configs": {{"linux/amd64": "{DIGEST_B}"}}' in text
    back = lock.parse(text, "mirrors/images.lock")
    assert back.get("docker.io/library/nginx", "1").config("linux/amd64") == DIGEST_B
    bad = text.replace(DIGEST_B, "sha256:nothex")
    with pytest.raises(InputError, match=":2: configs must map platforms to digests"):
        lock.parse(bad, "mirrors/images.lock")


def _record(**changes: object) -> str:
    record: dict[str, object] = {
        "source": "registry.k8s.io/pause",
        "tag": "3.9",
        "digest": DIGEST_A,
        "mediaType": INDEX,
        "platforms": ["linux/amd64"],
    }
    record.update(changes)
    return json.dumps(record)


HEADER_LINE = json.dumps(lock.HEADER)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # json.loads keeps the last of two keys: the digest a reviewer sees is not the one used.
        (
            HEADER_LINE + "\n" + _record()[:-1] + f', "digest": "{DIGEST_B}"}}\n',
            ':2: not a JSON object: duplicate key "digest"',
        ),
        ('{"relayLock": 1, "relayLock": 2}\n', ':1: not a JSON object: duplicate key "relayLock"'),
        ('{"relayLock": true}\n', ":1: not a relay lock of format 1"),
        ('{"relayLock": 1.0}\n', ":1: not a relay lock of format 1"),
        (
            HEADER_LINE + "\n" + _record(platforms=["linux amd64\nFROM x"]) + "\n",
            ":2: platform 'linux amd64",
        ),
        (HEADER_LINE + "\n" + _record(platforms=["amd64"]) + "\n", ":2: platform 'amd64'"),
        (
            HEADER_LINE + "\n" + _record(configs={"linux/amd64/v1/x": DIGEST_B}) + "\n",
            ":2: platform 'linux/amd64/v1/x'",
        ),
    ],
)
def test_a_lock_that_says_two_things_is_refused(text: str, message: str) -> None:
    with pytest.raises(InputError) as exc:
        lock.parse(text, "mirrors/images.lock")
    shown = [str(p) for p in exc.value.problems]
    assert any(s.startswith("mirrors/images.lock" + message) for s in shown), shown


def test_published_platforms_outside_the_known_names_still_read() -> None:
    # The lock records what upstream published; the shape is checked, not the names.
    text = HEADER_LINE + "\n" + _record(platforms=["wasip1/wasm", "linux/arm/v7"]) + "\n"
    assert lock.parse(text, "x").get("registry.k8s.io/pause", "3.9").platforms == (
        "wasip1/wasm",
        "linux/arm/v7",
    )
