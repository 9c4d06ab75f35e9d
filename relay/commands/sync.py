"""`relay sync --images FILE [--auth FILE]`: image-syncer's files, copied by relay.

skopeo's flags work here too (relay.commands.access): `--src-creds` applies to every source
registry of the images file, `--dest-creds` to every destination registry, `--authfile` is asked
after the image-syncer auth file, `--src-tls-verify=false` / `--dest-tls-verify=false` /
`--insecure` mark the sides' registries insecure for this run.
"""

from __future__ import annotations

import os
from pathlib import Path

from relay.commands.access import Access, credentials, registry_options
from relay.commands.common import optional_settings
from relay.errors import InputError, OperationFailed, Problem
from relay.output import document, progress
from relay.sync import run
from relay.sync.files import load_auth, load_rules


def sync(
    *,
    repo: Path,
    images: str,
    auth: str | None,
    jobs: int = 5,
    retries: int = 2,
    config: str | None = None,
    access: Access | None = None,
    dry_run: bool = False,
    output: document.Format = "text",
) -> int:
    if config is not None:
        # image-syncer's --config holds auth and images in one file; relay reads them apart.
        raise InputError(
            Problem(
                config,
                None,
                "relay sync does not read image-syncer's --config file (auth and images in one): "
                "split it into an --auth file (its 'auth' part) and an --images file (its "
                "'images' part), e.g. relay sync --auth auth.yaml --images images.yaml",
            )
        )
    access = access or Access()
    env = os.environ
    cfg = optional_settings(repo)
    # The files first: a bad one is reported before any password is asked for.
    rules = load_rules(images, env)
    auth_file = load_auth(auth, env) if auth is not None else None
    sources = sorted({r.repository.domain for r in rules})
    destinations = sorted({r.target.domain for r in rules})
    chain = credentials(
        access, sources, destinations, env, extra=[auth_file.provider] if auth_file else []
    )
    with progress.session() as bars:
        report = run(
            images,
            proc=jobs,
            retries=retries,
            settings=registry_options(
                cfg.registries if cfg else None, access, sources, destinations
            ),
            repo=repo,
            environ=env,
            rules=rules,
            auth_file=auth_file,
            credentials=chain,
            dry_run=dry_run,
            progress=bars,
            show=output == "text",
        )
    if output == "json":
        document.emit("sync", report.ok, {"dryRun": dry_run, **report.json()})
    if not report.ok:
        raise OperationFailed(
            "\n".join(
                [f"{len(report.failed)} image(s) failed after the retries", *report.unreachable]
            )
        )
    return 0
