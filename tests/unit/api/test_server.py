"""What `wfsched serve` does before starting anything: the port check, the ingress's environment
(no Ray is started here)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from unittest.mock import patch

import pytest

from wfsched.api import server
from wfsched.api.server import ensure_port_free
from wfsched.exceptions import ConflictError


def test_a_port_held_the_way_serves_proxy_holds_it_is_refused_by_number() -> None:
    with socket.socket() as holder:
        # Serve's proxy binds with SO_REUSEPORT; a second proxy doing the same would share the port.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConflictError, match=f"port {port} on 127.0.0.1 is already in use"):
            ensure_port_free("127.0.0.1", port)


def test_a_free_port_passes_and_stays_free() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ensure_port_free("127.0.0.1", port)
    ensure_port_free("127.0.0.1", port)  # the check let go of it


@pytest.fixture
def environ() -> Iterator[None]:
    """This process's environment as it was, after the test."""
    with patch.dict(os.environ):
        yield


@pytest.mark.usefixtures("environ")
def test_the_ingress_setting_decides_serve_s_direct_ingress() -> None:
    for name in [*server.HAPROXY_INGRESS_ENV, server.HAPROXY_DRAIN_ENV]:
        os.environ.pop(name, None)
    server.prepare_ingress("haproxy")
    assert all(os.environ[name] == "1" for name in server.HAPROXY_INGRESS_ENV)
    assert os.environ[server.HAPROXY_DRAIN_ENV] == server.HAPROXY_DRAIN_S
    server.prepare_ingress("serve")  # a later start in the same process, with Serve's proxy
    assert not set(server.HAPROXY_INGRESS_ENV) & set(os.environ)


@pytest.mark.usefixtures("environ")
def test_an_operators_drain_period_behind_haproxy_stands() -> None:
    os.environ[server.HAPROXY_DRAIN_ENV] = "60"
    server.prepare_ingress("haproxy")
    assert os.environ[server.HAPROXY_DRAIN_ENV] == "60"
