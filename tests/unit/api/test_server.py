"""The port check `wfsched serve` makes before starting anything (no Ray here)."""

from __future__ import annotations

import socket

import pytest

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
