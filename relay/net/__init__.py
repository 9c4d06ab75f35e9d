"""HTTP with no registry knowledge: the transport, the one retry helper, TLS trust, request
counters. Used by the registry client and by the ACR and Harbor stages."""
