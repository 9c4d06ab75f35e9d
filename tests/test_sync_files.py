"""`relay sync`'s input files (relay/sync/files.py): image-syncer's images and auth files in
JSON or YAML, environment expansion, and errors that name file and line. No registry."""

from __future__ import annotations

import pytest

from relay import sync
from relay.errors import InputError
from tests.sync_helpers import problems, rules, write


def test_destinations_expand_the_environment_like_image_syncer(tmp_path):
    (rule,) = rules(tmp_path, {"a.io/x/y:1": "${REG}/$NS/y"}, REG="127.0.0.1:5001", NS="mirror")
    assert rule.destination == "127.0.0.1:5001/mirror/y"
    with pytest.raises(InputError) as exc:
        rules(tmp_path, {"a.io/x/y:1": "${REG}/mirror/y"})
    assert problems(exc) == [
        (
            2,
            "source 'a.io/x/y:1': destination '${REG}/mirror/y' uses unset environment variable(s) REG",
        )
    ]


def test_bad_images_files_name_file_and_line(tmp_path):
    with pytest.raises(InputError) as exc:
        rules(
            tmp_path,
            """\
{
  "a.io/x/y": "b.io/x/y",
  "a.io/x/y:1,2": "b.io/x/y:3",
  "a.io/x/y": "c.io/x/y",
  "a.io/x/y@sha256:%s": "b.io/x/y@sha256:%s",
  "a.io/x/y:/(/": "b.io/x/y",
  "a.io/x/y:1,,2": "b.io/x/y",
  "": "b.io/x/y",
  "a.io/x/z": "",
  "a.io/x/w": [],
  "a.io/x/v": 3,
  "a.io/x/u": "b.io/UPPER/u"
}
"""
            % ("a" * 64, "b" * 64),
        )
    assert str(exc.value).startswith(str(tmp_path / "images.json") + ":3: ")
    got = problems(exc)
    assert [line for line, _ in got] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    text = "\n".join(message for _, message in got)
    for expected in (
        "destination has 1 tag(s) but the source has 2",
        "duplicate key 'a.io/x/y' (first at line 2)",
        "destination digest sha256:bbbb",
        "invalid tag regex /(/",
        "invalid tag '' in 'a.io/x/y:1,,2'",
        "source must not be empty",
        "destination must not be empty",
        "source 'a.io/x/w': empty destination",
        "destination must be a string or a list of strings",
        "must be lowercase",
    ):
        assert expected in text


def test_syntax_errors_carry_the_line(tmp_path):
    with pytest.raises(InputError) as exc:
        rules(tmp_path, '{\n  "a.io/x/y": "b.io/x/y",\n  "a.io/x/z" "b.io/x/z"\n}\n')
    assert problems(exc)[0][0] == 3 and "invalid JSON" in problems(exc)[0][1]
    with pytest.raises(InputError) as exc:
        rules(tmp_path, "a.io/x/y: b.io/x/y\n  bad: [\n", name="images.yaml")
    assert "invalid YAML" in str(exc.value) and problems(exc)[0][0] == 2
    with pytest.raises(InputError) as exc:
        rules(tmp_path, "a.io/x/y: b.io/x/y\na.io/x/y: c.io/x/y\n", name="images.yml")
    assert problems(exc) == [(2, "duplicate key 'a.io/x/y' (first at line 1)")]
    with pytest.raises(InputError, match="cannot read"):
        sync.load_rules(tmp_path / "missing.json")


def test_format_is_sniffed_without_a_known_extension(tmp_path):
    assert len(rules(tmp_path, {"a.io/x/y:1": "b.io/x/y"}, name="images")) == 1
    assert len(rules(tmp_path, "a.io/x/y:1: b.io/x/y\n", name="images.txt")) == 1


def test_a_combined_config_file_gets_a_hint(tmp_path):
    with pytest.raises(InputError, match="image-syncer --config file"):
        rules(tmp_path, {"auth": {}, "images": {"a.io/x/y": "b.io/x/y"}})


def test_go_expand_matches_os_expandenv():
    env = {"A": "1", "B_2": "2", "$": "pid", "1": "arg"}

    def expand(text: str) -> str:
        return sync.files._go_expand(text, lambda name: env.get(name, ""))

    # Expected values worked out from Go's os.Expand (src/os/env.go).
    assert expand("x$A-${B_2}y") == "x1-2y"
    assert expand("$$ $1 ${1}") == "pid arg arg"
    assert expand("a${}b") == "ab"  # "${}" is bad syntax and is eaten
    assert expand("a${Bb") == "aBb"  # unterminated: "${" eaten
    assert expand("end$") == "end$"  # a trailing "$" stays
    assert expand("$-x $%") == "x $%"  # "$-" is a special (unset); "$%" is not a name
    assert expand("${UNSET}pw") == "pw"


def test_auth_file_values(tmp_path, caplog):
    path = write(
        tmp_path / "auth.yaml",
        """\
127.0.0.1:5000:
  username: user
  password: pre-${SECRET}-post
  insecure: true
127.0.0.1:5000/team:
  username: "$TEAM_USER"
  password: ${DOLLAR}
quay.io:
  username: q
  password: 0123
  identityToken: tok
  colour: blue
""",
    )
    auth = sync.load_auth(path, {"SECRET": "s3", "TEAM_USER": "t", "DOLLAR": "$HOME"})
    provider = auth.provider
    assert provider.get("127.0.0.1:5000", "other/x").password == "pre-s3-post"
    # Longest prefix wins; a value that reads "$HOME" after expansion is not expanded again.
    team = provider.get("127.0.0.1:5000", "team/x")
    assert (team.username, team.password) == ("t", "$HOME")
    assert provider.get("quay.io", "a/b").password == "0123"  # YAML scalars keep their text
    assert provider.insecure("127.0.0.1:5000") and not provider.insecure("quay.io")
    assert sorted(auth.secrets) == ["$HOME", "0123", "pre-s3-post"]
    assert "identityToken is not supported" in caplog.text and "'colour' ignored" in caplog.text

    with pytest.raises(InputError) as exc:
        sync.load_auth(
            write(
                tmp_path / "auth.json",
                {"a.io": {"insecure": "yes"}, "b.io": ["x"], "c.io": {"password": 1}},
            )
        )
    assert problems(exc) == [
        (2, "entry 'a.io': insecure must be true or false"),
        (5, "entry 'b.io' must be a mapping"),
        (8, "entry 'c.io': password must be a string"),
    ]
