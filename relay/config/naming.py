"""The target repository name: a pure function of the source reference.

ACR flattens everything into one namespace, so `registry.k8s.io/ingress-nginx/controller` needs a
single-segment name. The rule, documented in the README:

1. The registry becomes a short prefix: docker.io has none (and `library/` is dropped), the
   well-known registries get a short word (registry.k8s.io → k8s, gcr.io → gcr, ghcr.io → ghcr,
   quay.io → quay), any other host is spelled out with `.` and `:` turned into `-`.
2. The prefix and every path component are joined with `_`, and `.` inside a component becomes `-`.

So `registry.k8s.io/ingress-nginx/controller` → `k8s_ingress-nginx_controller`, `nginx` → `nginx`,
`ghcr.io/fluxcd/source-controller` → `ghcr_fluxcd_source-controller`. The name never depends on the
rest of the list; a collision between two entries is a validation error, not a silent rename.
"""

from __future__ import annotations

import re

from relay.reference import Reference

REGISTRY_PREFIXES: dict[str, str] = {
    "docker.io": "",
    "registry.k8s.io": "k8s",
    "k8s.gcr.io": "k8s-gcr",
    "gcr.io": "gcr",
    "ghcr.io": "ghcr",
    "quay.io": "quay",
}

# ACR repository names: lower case, digits, `-` and `_`, starting with a letter or digit.
# The length limit is UNCONFIRMED (docs/vendors/acr.md#name-rules), hence a setting.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
MIN_LENGTH = 2
DEFAULT_MAX_LENGTH = 30


def derive(ref: Reference) -> str:
    """The default target name for a source repository (tag and digest are ignored)."""
    prefix = REGISTRY_PREFIXES.get(ref.domain)
    if prefix is None:
        prefix = re.sub(r"[^a-z0-9-]+", "-", ref.domain.lower()).strip("-")
    path = ref.path
    if ref.domain == "docker.io" and path.startswith("library/"):
        path = path[len("library/") :]
    parts = [p.replace(".", "-") for p in path.split("/")]
    if prefix:
        parts.insert(0, prefix)
    return "_".join(parts)


def check(name: str, max_length: int) -> str | None:
    """Why `name` is not a valid ACR repository name, or None if it is."""
    if len(name) < MIN_LENGTH:
        return f"'{name}' is shorter than {MIN_LENGTH} characters"
    if len(name) > max_length:
        return f"'{name}' is {len(name)} characters, longer than naming.max_length {max_length}"
    if not NAME_RE.fullmatch(name):
        return (
            f"'{name}' is not a valid ACR repository name: use lower-case letters, digits, "
            "'-' and '_', starting with a letter or digit"
        )
    return None


def suggest(ref: Reference, max_length: int, taken: set[str]) -> str:
    """A short, valid name to offer in an error message; the user still has to choose it."""
    last = ref.path.rsplit("/", 1)[-1].replace(".", "-")
    candidates = [last, f"{ref.path.split('/')[0]}_{last}".replace(".", "-")]
    for candidate in candidates:
        candidate = candidate[:max_length].rstrip("-_")
        if check(candidate, max_length) is None and candidate not in taken:
            return candidate
    return candidates[0][: max_length - 2].rstrip("-_") + "-2"
