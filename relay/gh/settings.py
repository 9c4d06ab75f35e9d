"""The `github:` section of mirrors/relay.yaml: how the workflows run in this repository.

Everything the workflows decide lives here, in the repository, reviewed like the list; GitHub's
repository variables hold only what must stay out of it (secrets, the Harbor runner's labels).

```yaml
github:
  repository: octo/mirrors   # where schedules and deliveries run; a fork does nothing until
                             # it names itself here
  changes: pull-request      # or push: how the lock and Dockerfiles reach the default branch
  branch: relay/lock         # the bot branch of those pull requests
  auto_merge: false          # ask GitHub to merge relay's pull requests once checks pass
  shard_size: 500            # tags per delivery job; more tags make a matrix of jobs
  max_shards: 20
```
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from relay.config import schema

Changes = Literal["pull-request", "push"]
CHANGES: tuple[Changes, ...] = ("pull-request", "push")
# GitHub: an owner is letters, digits and '-'; a repository name may also hold '.' and '_'.
REPOSITORY_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
BRANCH_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")


@dataclass(frozen=True)
class GithubSettings:
    repository: str | None = None
    changes: Changes = "pull-request"
    branch: str = "relay/lock"
    auto_merge: bool = False
    shard_size: int = 500
    max_shards: int = 20

    def enabled(self, repository: str) -> bool:
        """Whether schedules and deliveries run in `repository` (GITHUB_REPOSITORY)."""
        return self.repository is not None and self.repository.lower() == repository.lower()

    def shards(self, tags: int) -> int:
        """How many delivery jobs `tags` pinned tags call for."""
        return max(1, min(self.max_shards, math.ceil(tags / self.shard_size)))


def _branch(value: str) -> str | None:
    if ".." in value or value.endswith((".lock", "/")) or "//" in value:
        return "must be a branch name"
    return None


SECTION: schema.Section[GithubSettings] = schema.Section(
    GithubSettings,
    [
        schema.Key("repository", schema.text(REPOSITORY_RE, "must be owner/repo as on github.com")),
        schema.Key("changes", schema.choice(*CHANGES)),
        schema.Key(
            "branch", schema.where(schema.text(BRANCH_RE, "must be a branch name"), _branch)
        ),
        schema.Key("auto_merge", schema.boolean()),
        schema.Key("shard_size", schema.integer(1, 1_000_000)),
        schema.Key("max_shards", schema.integer(1, 256)),
    ],
)
"""The `github:` section, declared once; relay.commands.common hands it to the settings reader."""
