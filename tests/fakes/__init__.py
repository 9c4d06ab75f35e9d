"""In-process fakes for tests: a registry with fault injection, and the HTTP server they share.

Unlike the emulators in relay/sandbox (held to vendors' contracts, shipped), these are small
test doubles for the cases real registries cannot produce on demand (a dropped connection at
byte N, a redirect loop, a 503 on the third request).
"""
