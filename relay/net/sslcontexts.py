"""One TLS context per trust setting, shared by every connection that uses it.

urllib3 builds a fresh ``SSLContext`` for each new HTTPS connection and loads the CA bundle
into it: about 18 ms of CPU each on a 2-core runner. A copy opens a connection per worker on
both registries and a lock run one per concurrent resolve, so that cost was paid dozens of
times per run. Contexts are safe to share between threads once configured.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.ssl_ import create_urllib3_context

from relay.net import deadline


def _trust_key(verify: bool | str | None) -> bool | str:
    return verify if isinstance(verify, str) else verify is not False


def build_context(verify: bool | str) -> ssl.SSLContext | None:
    """The context requests would have built for ``verify``; None if it cannot be built here,
    so that requests takes over and reports the problem (a missing CA file, say) itself."""
    if verify is False:
        return create_urllib3_context(cert_reqs=ssl.CERT_NONE)
    # requests' own default for verify=True (certifi), so trust is exactly what it was.
    path = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    if not path or not os.path.exists(path):
        return None
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    try:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    except (OSError, ValueError):
        return None
    return context


class ContextCache:
    """Contexts by trust setting, built on first use. One per process: every registry client
    has its own session, and each would otherwise read the same CA bundle again."""

    def __init__(self) -> None:
        self._contexts: dict[bool | str, ssl.SSLContext | None] = {}
        self._lock = threading.Lock()

    def get(self, verify: bool | str | None) -> ssl.SSLContext | None:
        key = _trust_key(verify)
        with self._lock:
            if key not in self._contexts:
                self._contexts[key] = build_context(key)
            return self._contexts[key]


CONTEXTS = ContextCache()


def shared_context(verify: bool | str | None) -> ssl.SSLContext | None:
    return CONTEXTS.get(verify)


class SharedContextAdapter(HTTPAdapter):
    """An HTTPAdapter that hands urllib3 a cached context instead of CA file paths, and whose
    connection pools attach their connections to the request's deadline (relay.net.deadline).
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = deadline.POOL_CLASSES

    def proxy_manager_for(self, proxy: Any, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not str(proxy).lower().startswith("socks"):  # SOCKS brings its own pool classes
            manager.pool_classes_by_scheme = deadline.POOL_CLASSES
        return manager

    def context_for(self, verify: bool | str | None) -> ssl.SSLContext | None:
        return shared_context(verify)

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None
    ) -> tuple[Any, Any]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params.get("scheme") == "https" and cert is None:
            context = self.context_for(verify)
            if context is not None:
                pool_kwargs["ssl_context"] = context
                # With these set urllib3 would load the bundle into the context again.
                pool_kwargs.pop("ca_certs", None)
                pool_kwargs.pop("ca_cert_dir", None)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        conn_kw = getattr(conn, "conn_kw", {})
        if conn_kw.get("ssl_context") is not None:
            # requests points the pool at the CA file; the context already holds it.
            conn.ca_certs = None
            conn.ca_cert_dir = None
