"""relay: bring overseas container images to a mainland Harbor by way of Alibaba Cloud ACR."""

__version__ = "0.1.0"
