"""The Harbor stage: an ali-acr registry endpoint, the destination project and pull-based
replication policies, made to match the settings through Harbor's REST API; then runs that
Harbor watches until the images are pulled.

Layers, as in the ACR stage: settings (the `harbor:` section) → api (the REST client) → desired
(what the settings want, as Harbor's objects) → observe → plan (pure) → apply → replicate
(start and watch executions) → report.
"""
