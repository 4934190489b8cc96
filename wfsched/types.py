"""Type aliases used across modules, in one place."""

from __future__ import annotations

from typing import Any, TypeAlias

from ray.actor import ActorHandle

Handle: TypeAlias = "ActorHandle[Any]"
"""A handle to one of wfsched's named actors."""
