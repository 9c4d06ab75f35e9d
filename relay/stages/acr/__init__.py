"""The ACR stage: make Alibaba Cloud Container Registry build every listed tag.

Layers: settings (the `acr:` section) → client (both API editions, retries, call counts) →
plan (pure: desired state against an observed snapshot) → apply (observe, carry out, watch
builds) → commands (what the CLI calls).
"""
