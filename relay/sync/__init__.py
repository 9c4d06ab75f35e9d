"""`relay sync`: copy whole sets of images between registries from image-syncer's own files.

Teams that migrate registries with AliyunContainerService/image-syncer
(``image-syncer --auth auth.json --images images.json --proc 6 --retries 2``) can point relay at
the same two files. The formats and rules are image-syncer's (v1.5, README and pkg/client):

images file (JSON or YAML), ``source: destination`` or ``source: [destination, ...]``:

* ``registry/repo``                  every tag of the repository
* ``registry/repo:t1,t2``            those tags
* ``registry/repo@sha256:...``       that digest
* ``registry/repo:/regex/``          every tag the regular expression matches (searched, not
  anchored, like Go's ``MatchString``; one expression per rule)
* destination without tag or digest: the source tag (or digest) is kept; with tags
  ``dst:a,b``: as many as the source has, mapped left to right; with a digest: only the
  source's own digest. ``$VAR``/``${VAR}`` in destinations read the environment.
* names are normalised like ``docker pull`` (``nginx`` is ``docker.io/library/nginx``).

auth file (JSON or YAML): ``{"registry[/namespace]": {"username", "password", "insecure"}}``,
longest matching prefix wins, ``$VAR``/``${VAR}`` anywhere in username/password expanded the way
Go's ``os.ExpandEnv`` does (image-syncer's own code), ``insecure: true`` allows plain HTTP.

Every rule is expanded into (source, destination) pairs, listing tags upstream where needed;
the pairs are copied ``proc`` at a time with :func:`relay.copy.copy_image`, which skips an
unchanged image after one HEAD on each side. A failure does not stop the others; ``retries``
further passes go over whatever failed (rules whose tag listing failed included), as
image-syncer does. The result is a table per image on stdout and, in GitHub Actions, in the job
summary; :attr:`SyncReport.ok` says whether everything succeeded.
"""

from relay.sync.files import AuthFile, load_auth, load_rules
from relay.sync.report import COPIED, FAILED, SKIPPED, UNCHANGED, ImageResult, SyncReport
from relay.sync.rules import Pair, Rule, make_rule, pair_tags, static_pairs
from relay.sync.run import DEFAULT_PROC, DEFAULT_RETRIES, run

__all__ = [
    "COPIED",
    "DEFAULT_PROC",
    "DEFAULT_RETRIES",
    "FAILED",
    "SKIPPED",
    "UNCHANGED",
    "AuthFile",
    "ImageResult",
    "Pair",
    "Rule",
    "SyncReport",
    "load_auth",
    "load_rules",
    "make_rule",
    "pair_tags",
    "run",
    "static_pairs",
]
