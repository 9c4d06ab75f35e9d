"""OCI distribution registry client built on requests.

Self-contained: it imports nothing from relay except :mod:`relay.errors` (for the base
exception classes). Typical use::

    from relay.registry import RegistryClient, default_credentials

    src = RegistryClient("ghcr.io", credentials=default_credentials())
    manifest = src.get_manifest("org/app", "v1")
"""

from relay.net.retry import RetryPolicy
from relay.net.stats import RequestStats, StatsSnapshot
from relay.net.tls import TLSConfig
from relay.registry.auth import Challenge, Token, TokenCache, parse_www_authenticate
from relay.registry.blobstream import BlobStream
from relay.registry.client import RegistryClient
from relay.registry.credentials import (
    Credential,
    CredentialChain,
    CredentialProvider,
    DockerConfig,
    EnvCredentials,
    ImageSyncerAuth,
    StaticCredentials,
    default_credentials,
)
from relay.registry.errors import (
    AccessDeniedError,
    AuthenticationError,
    DigestMismatchError,
    ErrorDetail,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RegistryConnectionError,
    RegistryError,
    RegistryTLSError,
    UnsupportedManifestError,
)
from relay.registry.models import BlobInfo, Manifest, ManifestDescriptor, PingResult, PushResult
from relay.registry.ratelimit import RateLimit

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "BlobInfo",
    "BlobStream",
    "Challenge",
    "Credential",
    "CredentialChain",
    "CredentialProvider",
    "DigestMismatchError",
    "DockerConfig",
    "EnvCredentials",
    "ErrorDetail",
    "ImageSyncerAuth",
    "Manifest",
    "ManifestDescriptor",
    "NotFoundError",
    "PingResult",
    "ProtocolError",
    "PushResult",
    "RateLimit",
    "RateLimitedError",
    "RegistryClient",
    "RegistryConnectionError",
    "RegistryError",
    "RegistryTLSError",
    "RequestStats",
    "RetryPolicy",
    "StaticCredentials",
    "StatsSnapshot",
    "TLSConfig",
    "Token",
    "TokenCache",
    "UnsupportedManifestError",
    "default_credentials",
    "parse_www_authenticate",
]
