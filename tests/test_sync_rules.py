"""`relay sync`'s rules (relay/sync/rules.py): every image-syncer source form, and how a rule's
tags pair source with destination. No registry."""

from __future__ import annotations

import pytest

from relay import sync
from tests.sync_helpers import DIGEST, rules


def test_every_image_syncer_source_form(tmp_path):
    # image-syncer's README example, verbatim, as YAML.
    found = rules(
        tmp_path,
        f"""\
quay.io/coreos/kube-rbac-proxy: quay.io/ruohe/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy:v1.0: quay.io/ruohe/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy:v1.0,v2.0: quay.io/ruohe/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy@{DIGEST}: quay.io/ruohe/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy:v1.1:
  - quay.io/ruohe/kube-rbac-proxy1
  - quay.io/ruohe/kube-rbac-proxy2
quay.io/coreos/kube-rbac-proxy:/a+/: quay.io/ruohe/kube-rbac-proxy
nginx:1.25: 127.0.0.1:5000/mirror/nginx
127.0.0.1:5000/x/y:/^v[0-9]+(\\.[0-9]+)*$/: 127.0.0.1:5001/z
""",
        name="images.yaml",
    )
    shape = [(r.line, str(r.repository), r.tags, r.digest, r.pattern, str(r.target)) for r in found]
    assert shape == [
        (1, "quay.io/coreos/kube-rbac-proxy", (), None, None, "quay.io/ruohe/kube-rbac-proxy"),
        (
            2,
            "quay.io/coreos/kube-rbac-proxy",
            ("v1.0",),
            None,
            None,
            "quay.io/ruohe/kube-rbac-proxy",
        ),
        (
            3,
            "quay.io/coreos/kube-rbac-proxy",
            ("v1.0", "v2.0"),
            None,
            None,
            "quay.io/ruohe/kube-rbac-proxy",
        ),
        (4, "quay.io/coreos/kube-rbac-proxy", (), DIGEST, None, "quay.io/ruohe/kube-rbac-proxy"),
        (
            5,
            "quay.io/coreos/kube-rbac-proxy",
            ("v1.1",),
            None,
            None,
            "quay.io/ruohe/kube-rbac-proxy1",
        ),
        (
            5,
            "quay.io/coreos/kube-rbac-proxy",
            ("v1.1",),
            None,
            None,
            "quay.io/ruohe/kube-rbac-proxy2",
        ),
        (8, "quay.io/coreos/kube-rbac-proxy", (), None, "a+", "quay.io/ruohe/kube-rbac-proxy"),
        # Names are normalised like `docker pull`, as image-syncer's ParseNormalizedNamed does.
        (9, "docker.io/library/nginx", ("1.25",), None, None, "127.0.0.1:5000/mirror/nginx"),
        (10, "127.0.0.1:5000/x/y", (), None, "^v[0-9]+(\\.[0-9]+)*$", "127.0.0.1:5001/z"),
    ]
    assert [r.needs_listing for r in found] == [
        True,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
        True,
    ]


def test_static_pairs_keep_or_map_tags(tmp_path):
    found = rules(
        tmp_path,
        {
            "127.0.0.1:5000/a/b:1,2": "127.0.0.1:5001/c/d",
            "127.0.0.1:5000/a/e:1,2": "127.0.0.1:5001/c/f:one,two",
            f"127.0.0.1:5000/a/g@{DIGEST}": ["127.0.0.1:5001/c/h", "127.0.0.1:5001/c/i:pinned"],
            f"127.0.0.1:5000/a/j:ignored@{DIGEST}": f"127.0.0.1:5001/c/k@{DIGEST}",
        },
    )
    pairs = [(p.source_text, p.destination_text) for r in found for p in sync.static_pairs(r)]
    assert pairs == [
        ("127.0.0.1:5000/a/b:1", "127.0.0.1:5001/c/d:1"),
        ("127.0.0.1:5000/a/b:2", "127.0.0.1:5001/c/d:2"),
        ("127.0.0.1:5000/a/e:1", "127.0.0.1:5001/c/f:one"),
        ("127.0.0.1:5000/a/e:2", "127.0.0.1:5001/c/f:two"),
        (f"127.0.0.1:5000/a/g@{DIGEST}", f"127.0.0.1:5001/c/h@{DIGEST}"),
        (f"127.0.0.1:5000/a/g@{DIGEST}", "127.0.0.1:5001/c/i:pinned"),
        (f"127.0.0.1:5000/a/j@{DIGEST}", f"127.0.0.1:5001/c/k@{DIGEST}"),
    ]


def test_listed_tags_must_match_destination_tag_count(tmp_path):
    (rule,) = rules(tmp_path, {"127.0.0.1:5000/a/b:/^v1$/": "127.0.0.1:5001/c/d:stable"})
    # One selected tag may be renamed (image-syncer compares counts after listing) ...
    (pair,) = sync.pair_tags(rule, ["v1"])
    assert pair.destination_text == "127.0.0.1:5001/c/d:stable"
    # ... two may not.
    with pytest.raises(Exception, match="destination has 1 tag"):
        sync.pair_tags(rule, ["v1", "v10"])
