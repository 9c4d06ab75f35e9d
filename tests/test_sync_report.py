"""`relay sync`'s report (relay/sync/report.py): the job summary within its size cap."""

from __future__ import annotations

from relay import sync


def test_the_job_summary_keeps_every_failure():
    ok = [sync.ImageResult(f"a.io/x/y:{i}", f"b.io/x/y:{i}", sync.UNCHANGED) for i in range(5)]
    bad = [sync.ImageResult("a.io/x/y:9", "b.io/x/y:9", sync.FAILED, error="a|b")]
    table = sync.SyncReport(results=ok + bad).table()
    whole = table.markdown()
    # Room for the head and about three rows: the failure stays, later successes go first.
    markdown = table.markdown(limit=len(whole.encode()) - 3 * 60 + 200)
    assert "| b.io/x/y:0 |" in markdown
    assert "| b.io/x/y:4 |" not in markdown
    assert "| **failed** |" in markdown and "a\\|b" in markdown
    assert "rows left out to fit the job summary; the job log has the whole table._" in markdown
