"""Link-header paging (relay.net.paging) on what registries and Harbor send."""

from __future__ import annotations

import pytest
import requests

from relay.net.paging import next_page


def answer(
    link: str | None, url: str = "https://r.example/v2/a/tags/list?n=2"
) -> requests.Response:
    response = requests.Response()
    response.url = url
    if link is not None:
        response.headers["Link"] = link
    return response


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        # distribution: relative, one link
        (
            '</v2/library/nginx/tags/list?last=1.25&n=100>; rel="next"',
            "https://r.example/v2/library/nginx/tags/list?last=1.25&n=100",
        ),
        # several links, unquoted rel, extra parameters
        (
            "<https://r.example/v2/a/tags/list?n=2&last=b>; rel=prev, "
            '<https://r.example/v2/a/tags/list?n=2&last=d>; rel="next"; title="more"',
            "https://r.example/v2/a/tags/list?n=2&last=d",
        ),
        # a comma inside the URL, a rel with two values
        ('<https://r.example/p?a=1,2>; rel="last next"', "https://r.example/p?a=1,2"),
        # Harbor: relative URLs and a " , " separator
        (
            '</api/v2.0/registries?page=2&page_size=10>; rel="next" , '
            '</api/v2.0/registries?page=1&page_size=10>; rel="prev"',
            "https://r.example/api/v2.0/registries?page=2&page_size=10",
        ),
        (None, None),
        ("", None),
        ('</x>; rel="prev"', None),
    ],
)
def test_next_page(link: str | None, expected: str | None) -> None:
    assert next_page(answer(link)) == expected
