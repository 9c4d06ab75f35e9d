"""The target repository name: a pure function of the source reference and the settings.

ACR flattens everything into one namespace, so `registry.k8s.io/ingress-nginx/controller` needs a
single-segment name. The rule, documented in the README:

1. The registry becomes a short prefix: docker.io has none (and `library/` is dropped), the
   well-known registries get a short word (registry.k8s.io → k8s, gcr.io → gcr, ghcr.io → ghcr,
   quay.io → quay), any other host is spelled out with `:` turned into `-`. The settings'
   `naming.prefixes` replaces the prefix per registry (`registry.k8s.io: ""` gives kubeadm's
   `kube-apiserver`, `pause`… under one `imageRepository`).
2. The prefix and every path component are joined with `_`; `.` is kept (ACR repository names
   may hold it: docs/vendors/acr.md#name-rules, ROS doc 135727).

So `registry.k8s.io/ingress-nginx/controller` → `k8s_ingress-nginx_controller`, `nginx` → `nginx`,
`ghcr.io/fluxcd/source-controller` → `ghcr_fluxcd_source-controller`. The name never depends on the
rest of the list; a collision between two entries is a validation error, not a silent rename.
What *does* look at the list is `suggest`: the `name:` it offers is unused in the list and ends on
a word boundary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set

from relay.reference import Reference

REGISTRY_PREFIXES: dict[str, str] = {
    "docker.io": "",
    "registry.k8s.io": "k8s",
    "k8s.gcr.io": "k8s-gcr",
    "gcr.io": "gcr",
    "ghcr.io": "ghcr",
    "quay.io": "quay",
}

# ACR repository names, per Alibaba's ROS resource doc ALIYUN::CR::Repository (doc 135727):
# 2-64 characters of lower-case letters, digits, `.`, `-` and `_` (docs/vendors/acr.md#name-rules;
# other revisions say 2-30 without `.`, hence `naming.max_length`). The name is also one path
# component in ACR and Harbor, so it must follow distribution's path-component grammar
# (separators `.`, `_`, `__` or runs of `-` between alphanumerics).
NAME_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
MIN_LENGTH = 2
DEFAULT_MAX_LENGTH = 64
MAX_LENGTH = 64  # ACR's documented ceiling; a setting above it would make names ACR refuses
# ACR Personal Edition namespaces: 2-30 characters of lower-case letters, digits, `-` and `_`,
# not starting with `-` or `_`; no `.` (docs/vendors/acr.md#name-rules, CreateRepo doc 72396,
# ROS ALIYUN::CR::Namespace).
NAMESPACE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{1,29}")
NAMESPACE_RULE = "must be 2-30 of a-z, 0-9, '-' and '_', starting with a-z or 0-9 (no '.')"
# A registry prefix in `naming.prefixes`: empty, or a name of its own.
PREFIX_RE = re.compile(r"|[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")

_WORD_SEPARATORS = re.compile(r"[._-]+")


def host_case_problem(domain: str) -> str | None:
    """Why a registry host spelled with upper case is refused, or None. Hosts are
    case-insensitive (DNS, and docker compares them so), so REGISTRY.K8S.IO/pause and
    registry.k8s.io/pause are one repository; taking both would mirror it twice under two
    names. Refused rather than rewritten, so the file says what relay uses."""
    if domain == domain.lower():
        return None
    return f"registry host '{domain}' has upper case (hosts are case-insensitive)"


def prefix_for(domain: str, prefixes: Mapping[str, str] | None = None) -> str:
    """The name prefix for a registry: the settings' override, the built-in word, or the host
    with `:` turned into `-`."""
    if prefixes and domain in prefixes:
        return prefixes[domain]
    known = REGISTRY_PREFIXES.get(domain)
    if known is not None:
        return known
    return re.sub(r"[^a-z0-9.-]+", "-", domain.lower()).strip("-.")


def derive(ref: Reference, prefixes: Mapping[str, str] | None = None) -> str:
    """The default target name for a source repository (tag and digest are ignored)."""
    prefix = prefix_for(ref.domain, prefixes)
    path = ref.path
    if ref.domain == "docker.io" and path.startswith("library/"):
        path = path[len("library/") :]
    parts = path.split("/")
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
            "'.', '-' and '_', starting and ending with a letter or digit"
        )
    return None


def check_namespace(name: str) -> str | None:
    """Why `name` is not a valid ACR namespace (its own rule: no `.`, at most 30), or None."""
    return None if NAMESPACE_RE.fullmatch(name) else f"'{name}' {NAMESPACE_RULE}"


def fit(name: str, max_length: int) -> str:
    """``name`` cut to ``max_length`` at a word boundary (`-`, `_`, `.`), never mid-word; the
    first word alone is cut only when nothing else fits."""
    return _fit_words(name, max_length) or name[:max_length].rstrip("._-")


def _fit_words(name: str, max_length: int) -> str:
    """The longest prefix of whole words of ``name`` within ``max_length``; "" if none."""
    if len(name) <= max_length:
        return name
    cut = name[: max_length + 1]
    ends = [m.start() for m in _WORD_SEPARATORS.finditer(cut) if m.start() <= max_length]
    return name[: ends[-1]] if ends and ends[-1] >= 1 else ""


def suggest(
    ref: Reference,
    max_length: int,
    taken: Set[str],
    prefixes: Mapping[str, str] | None = None,
) -> str:
    """A valid name for ``ref`` that no other entry of the list has (``taken``), ending on a
    word boundary: the repository's last component, then qualified by its parent, by a word for
    the registry, by the whole derived prefix (each qualifier shortened by whole words so the
    last component stays whole), and only then numbered."""
    path = ref.path
    if ref.domain == "docker.io" and path.startswith("library/"):
        path = path[len("library/") :]
    parts = path.split("/")
    last = fit(parts[-1], max_length)
    registry = _registry_word(ref.domain, prefixes)
    heads = [""]
    if len(parts) > 1 and parts[-2] != parts[-1]:
        heads.append(parts[-2])
    if registry:
        heads.append(registry)
        if len(parts) > 1:
            heads.append(f"{registry}_{parts[-2]}")
    heads.append("_".join([prefix_for(ref.domain, prefixes), *parts[:-1]]).strip("_"))
    seen: set[str] = set()
    for head in heads:
        short = _fit_words(head, max_length - len(last) - 1) if head else ""
        if head and not short:
            continue
        candidate = f"{short}_{last}" if short else last
        if candidate in seen:
            continue
        seen.add(candidate)
        if check(candidate, max_length) is None and candidate not in taken:
            return candidate
    base = fit(parts[-1], max_length - 4)
    for n in range(2, 1000):
        candidate = f"{base}-{n}"
        if check(candidate, max_length) is None and candidate not in taken:
            return candidate
    raise AssertionError("no free name among 1,000")  # pragma: no cover - lists are smaller


def _registry_word(domain: str, prefixes: Mapping[str, str] | None) -> str:
    """A short word for a registry: its prefix, or the host's main label (docker.elastic.co →
    elastic, mcr.microsoft.com → microsoft)."""
    prefix = prefix_for(domain, prefixes)
    if prefix and (domain in REGISTRY_PREFIXES or (prefixes and domain in prefixes)):
        return prefix
    if domain in REGISTRY_PREFIXES:  # docker.io: no word
        return ""
    labels = [label for label in domain.split(":")[0].lower().split(".") if label]
    if len(labels) >= 2:
        return re.sub(r"[^a-z0-9-]+", "-", labels[-2]).strip("-")
    return re.sub(r"[^a-z0-9-]+", "-", labels[0] if labels else "").strip("-")
