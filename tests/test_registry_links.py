"""Link header parsing for tag pagination (relay.registry.links)."""

from __future__ import annotations

from relay.registry.links import next_link, parse_link_header


def test_distribution_style_relative_link() -> None:
    value = '</v2/library/nginx/tags/list?last=1.25&n=100>; rel="next"'
    assert next_link(value) == "/v2/library/nginx/tags/list?last=1.25&n=100"


def test_several_links_and_unquoted_rel() -> None:
    value = (
        "<https://r.example/v2/a/tags/list?n=2&last=b>; rel=prev, "
        '<https://r.example/v2/a/tags/list?n=2&last=d>; rel="next"; title="more"'
    )
    links = parse_link_header(value)
    assert [sorted(link.rels) for link in links] == [["prev"], ["next"]]
    assert links[1].params["title"] == "more"
    assert next_link(value) == "https://r.example/v2/a/tags/list?n=2&last=d"


def test_rel_with_several_values_and_commas_in_url() -> None:
    value = '<https://r.example/p?a=1,2>; rel="last next"'
    assert next_link(value) == "https://r.example/p?a=1,2"


def test_no_next() -> None:
    assert next_link(None) is None
    assert next_link("") is None
    assert next_link('</x>; rel="prev"') is None
