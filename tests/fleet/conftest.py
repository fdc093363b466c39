"""The fleet's tests run against a real nats-server (``tests.servers.nats``)."""

from tests.servers.nats import nats_server

__all__ = ["nats_server"]
