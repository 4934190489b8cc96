"""An event's SSE frame is encoded once per replica, and a frame is only ever its own event's."""

from __future__ import annotations

import json

from wfsched.api.routes import streams
from wfsched.models.event import Event, EventType


def event(seq: int) -> Event:
    return Event(workflow_id="w", seq=seq, id=100 + seq, type=EventType.job_progress, ts=1.5, data={"done": seq})


def fields(frame: bytes) -> dict[str, str]:
    lines = frame.decode().strip().splitlines()
    return dict(line.split(": ", 1) for line in lines)


def test_a_frame_carries_the_cursor_of_its_stream_and_the_event_as_json() -> None:
    one = event(3)
    by_seq, by_id = streams._frame(one, by_global_id=False), streams._frame(one, by_global_id=True)
    assert fields(by_seq)["id"] == "3" and fields(by_id)["id"] == "103"
    for frame in (by_seq, by_id):
        assert fields(frame)["event"] == "job.progress"
        assert Event.model_validate(json.loads(fields(frame)["data"])) == one


def test_the_same_event_is_encoded_once() -> None:
    one = event(4)
    assert streams._frame(one, by_global_id=False) is streams._frame(one, by_global_id=False)


def test_a_frame_cached_for_another_object_is_never_handed_out() -> None:
    """An object's id can be reused once it is gone: the cache keeps the object and checks it."""
    one, other = event(5), event(6)
    streams._FRAMES[(id(other), False)] = (one, streams._frame(one, by_global_id=False))
    assert fields(streams._frame(other, by_global_id=False))["id"] == "6"


def test_the_cache_keeps_a_bounded_number_of_frames() -> None:
    for seq in range(streams.FRAMES_KEPT + 10):
        streams._frame(event(seq), by_global_id=False)
    assert len(streams._FRAMES) == streams.FRAMES_KEPT
