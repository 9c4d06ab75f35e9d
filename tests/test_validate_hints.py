"""`relay validate` catches before the run what used to fail during it, and says what to do
about the YAML mistakes people make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay import cli

from .helpers import write_repo

GOOD = "images:\n  - source: nginx\n    tags: ['1.27']\n"


def validate(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["validate", "--repo", str(repo)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("images", "line", "words"),
    [
        # A regular expression in double quotes: `\.` is an escape YAML does not know.
        (
            'images:\n  - source: nginx\n    select: {include: "^1\\.27"}\n',
            3,
            ["found unknown escape character", "use single quotes for regular expressions"],
        ),
        # An unquoted range: `>` starts a folded block scalar.
        (
            "images:\n  - source: nginx\n    select:\n      semver: >=1.3 <2\n",
            4,
            [
                "semver's value starts with '>'",
                "quote values that start with > | * & ! %",
                "semver: '>=1.3 <2'",
            ],
        ),
        # A key one column too far right.
        (
            "images:\n  - source: nginx\n     tags: [1]\n",
            3,
            ["key 'tags' on line 3 is at column 6", "'source' above it is at column 5"],
        ),
        # A key one column too far left.
        (
            "images:\n  - source: nginx\n    tags: ['1']\n   name: web\n",
            4,
            ["key 'name' on line 4 is at column 4", "'tags' above it is at column 5"],
        ),
        # A list item out of line with the one above.
        (
            "images:\n  - source: nginx\n    tags:\n      - '1'\n     - '2'\n",
            5,
            ["list item on line 5 is at column 6", "the one above it is at column 7"],
        ),
    ],
    ids=["double-quoted-regex", "unquoted-range", "key-right", "key-left", "list-item"],
)
def test_yaml_mistakes_get_a_hint(tmp_path, capsys, images, line, words) -> None:
    write_repo(tmp_path, images)
    code, out, err = validate(tmp_path, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"mirrors/images.yaml:{line}: invalid YAML: "), err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "mirrors/images.lock").exists()


def test_yaml_words_and_dates_as_tags_say_quote_it(tmp_path, capsys) -> None:
    write_repo(
        tmp_path, "images:\n  - source: nginx\n    tags: [on, yes, 'no', null, 2024-01-01]\n"
    )
    code, _, err = validate(tmp_path, capsys)
    assert code == 2
    assert "YAML reads on as a boolean; quote it: 'on'" in err
    assert "YAML reads yes as a boolean; quote it: 'yes'" in err
    assert "'no'" not in err.replace("quote it: 'no'", "")  # quoted: fine
    assert "YAML reads null as no value; quote it: 'null'" in err
    assert "YAML reads 2024-01-01 as a date; quote it: '2024-01-01'" in err
    assert "relay: 4 problems" in err


def test_inf_as_a_tag_is_reported_once(tmp_path, capsys) -> None:
    write_repo(tmp_path, "images:\n  - source: nginx\n    tags: [.inf]\n")
    code, out, err = validate(tmp_path, capsys)
    assert code == 2
    assert (out + err).count("'.inf'") == 1
    # relay plan in a terminal used to print it in the plan and again on stderr.
    capsys.readouterr()
    assert cli.main(["plan", "--repo", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert (out + err).count("'.inf'") == 1, out + err
    assert "1 problem(s)" in out


def test_copy_registry_as_a_url_is_refused(tmp_path, capsys) -> None:
    write_repo(
        tmp_path,
        GOOD,
        relay_yaml="transport: copy\ncopy:\n  registry: https://registry.cn-hangzhou.aliyuncs.com\n"
        "  namespace: m\n",
    )
    code, _, err = validate(tmp_path, capsys)
    assert code == 2
    assert "mirrors/relay.yaml:3: copy.registry is a URL" in err
    assert "registry: registry.cn-hangzhou.aliyuncs.com" in err
    write_repo(tmp_path, GOOD, relay_yaml="copy:\n  registry: reg.example.cn/team\n")
    code, _, err = validate(tmp_path, capsys)
    assert code == 2 and "put 'team' in copy.namespace" in err


def test_acr_region_typo_gets_did_you_mean(tmp_path, capsys) -> None:
    write_repo(tmp_path, GOOD, relay_yaml="acr:\n  namespace: mirrors\n  region: cn-hangzou\n")
    code, _, err = validate(tmp_path, capsys)
    assert code == 2
    assert (
        "mirrors/relay.yaml:3: acr.region 'cn-hangzou' is not an ACR region; did you mean "
        "'cn-hangzhou'?" in err
    )
    # Every known region passes; a newer one passes when the endpoint is named.
    write_repo(tmp_path, GOOD, relay_yaml="acr:\n  namespace: mirrors\n  region: ap-southeast-1\n")
    assert validate(tmp_path, capsys)[0] == 0
    write_repo(
        tmp_path,
        GOOD,
        relay_yaml="acr:\n  namespace: mirrors\n  region: cn-nanjing\n"
        "  endpoint: cr.cn-nanjing.aliyuncs.com\n",
    )
    assert validate(tmp_path, capsys)[0] == 0


def test_acr_regions_are_the_ones_harbor_offers() -> None:
    # relay and the Harbor emulator share relay.stages.acr.regions; the vendor note is the
    # reading of Harbor's adapter.go they must both agree with.
    from relay.stages.acr.regions import REGIONS

    doc = (Path(__file__).parents[1] / "docs" / "vendors" / "harbor.md").read_text()
    listed = " ".join(doc.split("The regions it\n  lists:", 1)[1].split(". `relay", 1)[0].split())
    assert tuple(r.strip() for r in listed.split(",")) == REGIONS


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (
            "acr:\n  namespace: mirrors\n  access_key_id: LTAIxxxx\n",
            [
                "acr: unknown key 'access_key_id': secrets never go in mirrors/relay.yaml",
                "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            ],
        ),
        (
            "acr:\n  namespace: mirrors\n  access_key_secret: s3cr3t-value\n",
            ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        ),
        (
            "harbor:\n  url: https://h.example.com\n  project: p\n  password: s3cr3t-value\n",
            ["harbor: unknown key 'password'", "HARBOR_USERNAME and HARBOR_PASSWORD"],
        ),
        (
            "copy:\n  registry: r.example.cn\n  username: me\n",
            ["copy: unknown key 'username'", "RELAY_COPY_USERNAME and RELAY_COPY_PASSWORD"],
        ),
    ],
    ids=["acr-key-id", "acr-secret", "harbor-password", "copy-username"],
)
def test_secrets_in_the_settings_name_the_variables(tmp_path, capsys, settings, words) -> None:
    write_repo(tmp_path, GOOD, relay_yaml=settings)
    code, out, err = validate(tmp_path, capsys)
    assert code == 2
    for word in words:
        assert word in err, err
    # The value is never repeated back.
    assert "s3cr3t-value" not in out + err and "LTAIxxxx" not in out + err


def test_a_successful_validate_names_the_files_it_checked(tmp_path, capsys) -> None:
    write_repo(tmp_path, GOOD, relay_yaml="lock:\n  concurrency: 4\n")
    code, out, _ = validate(tmp_path, capsys)
    assert code == 0
    assert "mirrors/images.yaml: 1 images" in out
    assert "mirrors/relay.yaml: settings: ok" in out
    assert "mirrors/images.lock: not there yet (relay lock writes it)" in out
    capsys.readouterr()
    assert cli.main(["validate", "-o", "json", "--repo", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["files"] == ["mirrors/images.yaml", "mirrors/relay.yaml"]
    assert doc["absent"] == ["mirrors/images.lock"]
