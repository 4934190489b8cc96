"""Unit tests never start Ray and never reach the network: the logic under test lives in plain
classes (README, "Developing"), and whatever needs the released model lives with the e2e tests."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import ray


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a unit test started Ray: move it to tests/e2e, or test the plain class instead")

    monkeypatch.setattr(ray, "init", refuse)
    yield


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            raise RuntimeError(
                f"a unit test reached {address[0]} over the network: move it to tests/e2e (unit tests download nothing)"
            )
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    yield


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
