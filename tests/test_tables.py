"""The one table renderer (relay.output.tables) and the job summary's 1 MiB cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.output import ghactions
from relay.output.tables import SUMMARY_LIMIT, Column, Table, code, escape, human_size


def table(rows: int = 3, failed: tuple[int, ...] = ()) -> Table:
    t = Table("relay test", [Column("Image", code=True), Column("Result"), Column("Size", "right")])
    for i in range(rows):
        t.add(
            f"r.io/x:{i}",
            "failed" if i in failed else "copied",
            human_size(i * 1024 * 1024),
            flag=i in failed,
        )
    t.summary = f"{rows} images"
    return t


def test_text_and_markdown_share_headers_units_and_alignment() -> None:
    t = table()
    text = t.text().splitlines()
    assert text[0].split() == ["IMAGE", "RESULT", "SIZE"]
    assert text[-1] == "3 images"
    assert text[3].endswith("2.0 MiB")
    markdown = t.markdown()
    assert "| Image | Result | Size |" in markdown and "|---|---|---:|" in markdown
    assert "| `r.io/x:1` | copied | 1.0 MiB |" in markdown


@pytest.mark.parametrize(
    ("raw", "cell"),
    [
        ("a|b", "a\\|b"),
        ("two\nlines", "two lines"),
        ("**bold** _it_ [link](x) <img>", "\\*\\*bold\\*\\* \\_it\\_ \\[link\\](x) \\<img\\>"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_one_escaper_keeps_text_in_its_cell(raw: str, cell: str) -> None:
    assert escape(raw) == cell


def test_code_spans_survive_backticks() -> None:
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"


def test_markdown_fits_the_limit_dropping_successes_first() -> None:
    t = table(rows=200, failed=(5, 150))
    limit = 4000
    markdown = t.markdown(limit=limit)
    assert len(markdown.encode()) <= limit
    assert "| `r.io/x:5` | **failed** |" in markdown and "| `r.io/x:150` | **failed** |" in markdown
    assert "rows left out to fit the job summary" in markdown


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 1536, 210 * 1024**2, 3 * 1024**4)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "210.0 MiB",
        "3.0 TiB",
    ]


def test_every_summary_write_respects_the_step_limit(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    path.write_text("x" * (SUMMARY_LIMIT - 5000))  # earlier steps of this job wrote most of it
    ghactions.summary(table(rows=500, failed=(7,)))
    size = path.stat().st_size
    assert size <= SUMMARY_LIMIT
    assert "| `r.io/x:7` | **failed** |" in path.read_text()
    ghactions.summary("more text\n" * 10_000)  # plain text: cut at a line, or left to the log
    assert path.stat().st_size <= SUMMARY_LIMIT
