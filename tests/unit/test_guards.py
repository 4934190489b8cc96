"""The guards of tests/unit/conftest.py: a unit test that starts Ray or reaches the network fails."""

from __future__ import annotations

import socket

import httpx
import pytest
import ray


def test_starting_ray_in_a_unit_test_fails() -> None:
    with pytest.raises(RuntimeError, match="unit test started Ray"):
        ray.init()


def test_a_download_in_a_unit_test_fails() -> None:
    with pytest.raises(RuntimeError, match="unit tests download nothing"):
        httpx.get("http://192.0.2.1/model.pt", timeout=1)  # TEST-NET-1: never routed


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
