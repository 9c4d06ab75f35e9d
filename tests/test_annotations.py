"""GitHub shows ten error annotations per step: relay emits nine, then one that counts the rest,
and groups a long report by kind in the log and the job summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relay import cli

from .helpers import write_repo


@pytest.fixture
def actions(monkeypatch, tmp_path: Path) -> Path:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def big_list(bad_tags: int, bad_platforms: int) -> str:
    # Shaped like a real images.txt import gone wrong: tags with spaces, typos in platforms.
    lines = ["images:"]
    for i in range(bad_tags):
        lines += [f"  - source: example.com/team/app{i}", f"    tags: ['v{i} final']"]
    for i in range(bad_platforms):
        lines += [
            f"  - source: example.com/team/svc{i}",
            "    tags: [v1]",
            "    platforms: [linux/amd46]",
        ]
    return "\n".join(lines) + "\n"


def test_many_problems_make_ten_annotations(actions: Path, tmp_path: Path, capsys) -> None:
    write_repo(tmp_path / "repo", big_list(400, 100))
    assert cli.main(["validate", "--repo", str(tmp_path / "repo")]) == 2
    err = capsys.readouterr().err
    annotations = [line for line in err.splitlines() if line.startswith("::error")]
    assert len(annotations) == 10
    assert annotations[-1].endswith("::and 491 more (391 tags, 100 platforms); see the log")
    # The log has every problem, grouped by kind, largest group first.
    assert "relay: 400 tags:" in err and "relay: 100 platforms:" in err
    assert err.index("relay: 400 tags:") < err.index("relay: 100 platforms:")
    log = "\n".join(line for line in err.splitlines() if not line.startswith("::"))
    assert log.count("is not a valid tag") == 400 and log.count("did you mean 'amd64'") == 100
    assert "relay: 500 problems" in err
    text = actions.read_text()
    assert "### relay: 500 problems" in text
    assert "<details><summary>400 tags</summary>" in text


def test_few_problems_stay_in_line_order_one_annotation_each(
    actions: Path, tmp_path: Path, capsys
) -> None:
    write_repo(tmp_path / "repo", big_list(2, 1))
    assert cli.main(["validate", "--repo", str(tmp_path / "repo")]) == 2
    err = capsys.readouterr().err
    annotations = [line for line in err.splitlines() if line.startswith("::error")]
    assert [re.search(r"line=(\d+)", a)[1] for a in annotations] == ["3", "5", "8"]  # type: ignore[index]
    assert annotations[2].endswith(
        "::platform 'linux/amd46' has an unknown architecture 'amd46'; did you mean 'amd64'?"
    )
    assert err.splitlines()[0].startswith("mirrors/images.yaml:3: tag 'v0 final'")
    assert not actions.exists()  # a short report needs no summary of its own
