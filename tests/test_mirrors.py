from __future__ import annotations

import textwrap

import pytest

from relay.config import mirrors, naming
from relay.errors import InputError

from .helpers import DIGEST_A


def parse(text: str, max_name_length: int = naming.DEFAULT_MAX_LENGTH) -> mirrors.MirrorList:
    return mirrors.parse(
        textwrap.dedent(text), "mirrors/images.yaml", max_name_length=max_name_length
    )


def problems(text: str, max_name_length: int = naming.DEFAULT_MAX_LENGTH) -> list[str]:
    with pytest.raises(InputError) as exc:
        parse(text, max_name_length)
    return [str(p) for p in exc.value.problems]


def test_full_entry() -> None:
    ml = parse(
        f"""\
        images:
          - source: registry.k8s.io/ingress-nginx/controller
            tags: [v1.9.4, "v1.9.5@{DIGEST_A}"]
            platforms: [linux/amd64, linux/arm64]
          - source: nginx
            name: web
            tags:
              - 1.20
            select:
              semver: ">=1.27 <2"
              include: '^1\\.'
              exclude: 'alpine|perl'
              latest: 3
        """
    )
    a, b = ml.entries
    assert a.source.name == "registry.k8s.io/ingress-nginx/controller"
    assert a.target == "k8s_ingress-nginx_controller"
    assert [(t.tag, t.digest, t.line) for t in a.tags] == [
        ("v1.9.4", None, 3),
        ("v1.9.5", DIGEST_A, 3),
    ]
    assert a.platforms == ("linux/amd64", "linux/arm64")
    assert a.line == 2
    assert b.source.name == "docker.io/library/nginx"
    assert b.target == "web" and b.explicit_name
    # YAML would read 1.20 as the float 1.2; a tag must keep its spelling.
    assert [t.tag for t in b.tags] == ["1.20"]
    assert b.select is not None and b.select.latest == 3


def test_unknown_key_names_line_and_suggests() -> None:
    got = problems(
        """\
        images:
          - source: nginx
            tag: [1.27]
        """
    )
    assert got[0].startswith(
        "mirrors/images.yaml:3: image entry: unknown key 'tag'; did you mean 'tags'?"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "images:\n  - source: nginx\n    tags: [a]\n    tags: [b]\n",
            ":4: image entry: duplicate key 'tags' (first at line 3)",
        ),
        ("images:\n  - source: nginx\n", ":2: image entry: needs 'tags:', 'select:' or both"),
        ("images:\n  - tags: [a]\n", ":2: image entry: missing 'source:'"),
        ("images:\n  - source: Nginx\n    tags: [a]\n", ":2: source 'Nginx':"),
        ("images:\n  - source: nginx:1.2\n    tags: [a]\n", ":2: source 'nginx:1.2':"),
        (
            "images:\n  - source: REGISTRY.K8S.IO/pause\n    tags: [a]\n",
            ":2: source 'REGISTRY.K8S.IO/pause': registry host 'REGISTRY.K8S.IO' has upper case"
            " (hosts are case-insensitive); did you mean 'registry.k8s.io/pause'?",
        ),
        ("images:\n  - source: nginx\n    tags: [a, a]\n", ":3: duplicate tag 'a'"),
        ("images:\n  - source: nginx\n    tags: []\n", ":3: tags: the list is empty"),
        (
            "images:\n  - source: nginx\n    tags: [.hidden]\n",
            ":3: tag '.hidden' is not a valid tag",
        ),
        (
            "images:\n  - source: nginx\n    tags: ['../../etc']\n",
            ":3: tag '../../etc' is not a valid tag",
        ),
        (
            "images:\n  - source: nginx\n    tags: ['--network=host']\n",
            ":3: tag '--network=host' is not a valid tag",
        ),
        ("images:\n  - source: nginx\n    tags: ['$HOME']\n", ":3: tag '$HOME' is not a valid tag"),
        (
            "images:\n  - source: nginx\n    tags: ['a AS b']\n",
            ":3: tag 'a AS b' is not a valid tag",
        ),
        (
            'images:\n  - source: nginx\n    tags: ["a\\nRUN x"]\n',
            ":3: tag 'a\\nRUN x' is not a valid tag",
        ),
        (
            "images:\n  - source: nginx\n    tags: ['a@sha256:abc']\n",
            ":3: tag 'a': pin 'sha256:abc' is not a digest",
        ),
        (
            "images:\n  - source: nginx\n    tags: [true]\n",
            ":3: tag must be a string, not a boolean",
        ),
        ("images:\n  - source: nginx\n    tags: a\n", ":3: tags must be a list, not a string"),
        (
            "images:\n  - source: nginx\n    tags: [a]\n    platforms: [amd64]\n",
            ":4: platform 'amd64' is not os/arch",
        ),
        (
            "images:\n  - source: nginx\n    tags: [a]\n    name: Web\n",
            ":4: name: 'Web' is not a valid ACR repository name",
        ),
        (
            "images:\n  - source: nginx\n    tags: [a]\n    name: ../x\n",
            ":4: name: '../x' is not a valid ACR repository name",
        ),
        (
            "images:\n  - source: nginx\n    select: {semver: 'abc'}\n",
            ":3: select.semver: 'abc' is not a version",
        ),
        (
            "images:\n  - source: nginx\n    select: {include: '('}\n",
            ":3: select.include: invalid regex",
        ),
        (
            "images:\n  - source: nginx\n    select: {latest: 0}\n",
            ":3: select.latest must be from 1 to 1000",
        ),
        (
            "images:\n  - source: nginx\n    select: {latest: many}\n",
            ":3: select.latest must be a whole number",
        ),
        ("images:\n  - source: nginx\n    select: {}\n", ":3: select: give at least one of"),
        (
            "images:\n  - source: nginx\n    select:\n      exclude: 'rc'\n",
            ":4: select.exclude narrows a selection but there is none; add all: true",
        ),
        (
            "images:\n  - source: nginx\n    select: {newest: 2}\n",
            ":3: select: unknown key 'newest'",
        ),
        (
            "image:\n  - source: nginx\n",
            ":1: the file: unknown key 'image'; did you mean 'images'?",
        ),
        ("images: {}\n", ":1: images must be a list, not a mapping"),
        ("images:\n  - [nginx]\n", ":2: image entry must be a mapping, not a list"),
        ("images:\n  - source: nginx\n   tags: [a]\n", ": invalid YAML"),
        (
            "images:\n  - source: !!python/object:os.system nginx\n    tags: [a]\n",
            ":2: source: unsupported YAML tag",
        ),
    ],
)
def test_errors_name_file_and_line(body: str, expected: str) -> None:
    got = problems(body)
    assert any(expected in g for g in got), got
    assert all(g.startswith("mirrors/images.yaml") for g in got)


def test_duplicate_entries_after_normalization() -> None:
    got = problems(
        """\
        images:
          - source: nginx
            tags: [a]
          - source: docker.io/library/nginx
            tags: [b]
        """
    )
    assert got == [
        "mirrors/images.yaml:4: duplicate entry for docker.io/library/nginx (first at line 2); "
        "merge the tags into one entry"
    ]


def test_collision_suggests_name() -> None:
    got = problems(
        """\
        images:
          - source: ghcr.io/foo
            tags: [a]
          - source: docker.io/ghcr/foo
            tags: [a]
        """
    )
    assert len(got) == 1
    assert (
        "mirrors/images.yaml:4: target name 'ghcr_foo' of docker.io/ghcr/foo collides with ghcr.io/foo (line 2)"
        in got[0]
    )
    assert "add 'name: " in got[0]


def test_name_too_long_is_a_setting() -> None:
    text = """\
        images:
          - source: quay.io/jetstack/cert-manager-controller
            tags: [v1.16.1]
        """
    got = problems(text, max_name_length=30)
    assert "is 37 characters, longer than naming.max_length 30" in got[0]
    assert "add 'name: cert-manager-controller'" in got[0]
    ml = parse(text)  # the default is ACR's documented 64
    assert ml.entries[0].target == "quay_jetstack_cert-manager-controller"


def test_suggestions_are_unused_in_the_list_and_end_on_a_word() -> None:
    # From the real lists: following the old advice created new collisions and cut words.
    got = problems(
        """\
        images:
          - source: elasticsearch
            tags: ["8.15.0"]
          - source: docker.elastic.co/elasticsearch/elasticsearch
            tags: ["8.15.0"]
          - source: quay.io/elasticsearch/elasticsearch
            tags: ["8.15.0"]
          - source: registry.k8s.io/sig-storage/nfs-subdir-external-provisioner
            tags: [v4.0.2]
        """,
        max_name_length=30,
    )
    hints = [g.split("add 'name: ")[1].split("'")[0] for g in got]
    assert hints == ["elastic_elasticsearch", "quay_elasticsearch", "nfs-subdir-external"]
    assert got[0].startswith("mirrors/images.yaml:4: target name 'docker.elastic.co_elasticsearch")


def test_collision_hints_do_not_collide_with_each_other() -> None:
    got = problems(
        """\
        images:
          - source: ghcr.io/foo
            tags: [a]
          - source: docker.io/ghcr/foo
            tags: [a]
          - source: docker.io/x/foo
            tags: [a]
            name: foo
          - source: docker.io/y/ghcr_foo
            tags: [a]
            name: ghcr_foo
        """
    )
    hints = [g.split("add 'name: ")[1].split("'")[0] for g in got]
    assert len(hints) == 2 and len(set(hints)) == 2
    assert not {"foo", "ghcr_foo"} & set(hints)


def test_an_entry_with_a_bad_tag_still_takes_part_in_the_checks() -> None:
    # One round of fixes must be enough: the bad tag, the duplicate and the collision at once.
    got = problems(
        """\
        images:
          - source: nginx
            tags: ["1.27", "bad tag"]
          - source: docker.io/library/nginx
            tags: ["1.26"]
          - source: ghcr.io/foo
            tags: [.a]
            platforms: [linux/amd46]
          - source: docker.io/ghcr/foo
            tags: [a]
        """
    )
    assert [g.split(":", 2)[1] for g in got] == ["3", "4", "7", "8", "9"], got
    assert "duplicate entry for docker.io/library/nginx" in got[1]
    assert "collides with ghcr.io/foo" in got[4]


def test_every_problem_is_reported_in_line_order() -> None:
    got = problems(
        """\
        images:
          - source: nginx
            tags: [.a]
          - source: redis
            tags: [b]
            platforms: [x]
          - source: busybox
            tags: [c]
            name: A
        """
    )
    assert [g.split(":")[1] for g in got] == ["3", "6", "9"]


def test_empty_file() -> None:
    assert problems("") == ["mirrors/images.yaml: the file is empty; it needs an 'images:' list"]


def test_load_missing_list(tmp_path) -> None:
    with pytest.raises(InputError, match="no mirrors list here"):
        mirrors.load(tmp_path)


def test_one_registry_in_two_cases_is_refused_not_mirrored_twice() -> None:
    got = problems(
        """\
        images:
          - source: registry.k8s.io/pause
            tags: [a]
          - source: Registry.K8s.io/pause
            tags: [a]
        """
    )
    assert got == [
        "mirrors/images.yaml:4: source 'Registry.K8s.io/pause': registry host 'Registry.K8s.io' "
        "has upper case (hosts are case-insensitive); did you mean 'registry.k8s.io/pause'?"
    ]
