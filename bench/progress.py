"""Progress-stream benchmark: latency from a state change to its arrival at 100 SSE clients.

Phase 1 starts the real service, runs `--workflows` workflows whose jobs report progress several
times a second, and holds `--clients` SSE streams open on them over HTTP. For every event each
client receives it records arrival time minus the event's own timestamp (when the scheduler made
it). Prints p50 and p99 against the target (p99 < 250 ms at 100 streams).

Phase 2 measures what ProgressActor sustains alone: `--clients` long-polls wait in it while the
driver publishes events one per call, as fast as it can; prints published and delivered events/s.

    python bench/progress.py [--clients 100 --workflows 20 --job-s 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
from httpx_sse import aconnect_sse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray

from tests.support.service import Api, bench_service
from wfsched.control.actors import PROGRESS_NAME
from wfsched.models.event import Event, EventType


async def stream(base: str, user: str, workflow_id: str, latencies_ms: list[float], live_from: list[float]) -> int:
    """Read one workflow's stream to its end; record each live event's latency; return how many.

    Events made before `live_from[0]` (set once every stream is open) are not timed: they are
    history replayed to a client that just connected, not live progress.
    """
    received = 0
    async with (
        httpx.AsyncClient(base_url=base, timeout=None) as client,
        aconnect_sse(client, "GET", f"/api/progress/{workflow_id}/stream", headers={"X-User-ID": user}) as source,
    ):
        async for message in source.aiter_sse():
            ts = json.loads(message.data)["ts"] if message.data else 0.0
            if ts >= live_from[0]:
                latencies_ms.append(1000 * (time.time() - ts))
                received += 1
    return received


async def phase_streams(args: argparse.Namespace, base: str, data_dir: Path) -> None:
    """Every workflow holds until all streams are open, then runs a job that reports progress."""
    users = [Api(base, f"bench-user-{u}") for u in range(3)]  # within the active-user limit
    release = data_dir / "release"
    jobs = [
        {
            "job_id": "hold",
            "job_type": "wait_signal",
            "image_path": str(data_dir / "none.svs"),
            "params": {"signal_path": str(release)},
        },
        {
            "job_id": "work",
            "job_type": "sleep",
            "image_path": str(data_dir / "none.svs"),
            "params": {"duration_s": args.job_s, "steps": int(args.job_s * 8)},
        },
    ]
    created = [users[i % len(users)].submit(jobs, name=f"w{i}") for i in range(args.workflows)]
    latencies_ms: list[float] = []
    live_from = [float("inf")]
    streams = [
        asyncio.create_task(
            stream(
                base,
                users[i % args.workflows % len(users)].user,
                created[i % args.workflows]["workflow_id"],
                latencies_ms,
                live_from,
            )
        )
        for i in range(args.clients)
    ]
    await asyncio.sleep(args.connect_s)  # let every stream open and catch up
    live_from[0] = time.time()
    started = time.monotonic()
    release.write_text("go")
    counts = await asyncio.gather(*streams)
    elapsed_s = time.monotonic() - started
    ordered = sorted(latencies_ms)
    print(f"phase 1: {args.clients} SSE clients on {args.workflows} workflows over HTTP, {elapsed_s:.1f} s live")
    print(f"  live events delivered:     {sum(counts):8d}  ({sum(counts) / elapsed_s:.0f}/s to clients)")
    print(f"  latency p50:               {statistics.median(ordered):8.1f} ms")
    print(f"  latency p99:               {ordered[int(0.99 * len(ordered))]:8.1f} ms  (target < 250 ms)")
    print(f"  latency max:               {ordered[-1]:8.1f} ms")


async def phase_actor(args: argparse.Namespace, namespace: str) -> None:
    progress = ray.get_actor(PROGRESS_NAME, namespace=namespace)
    workflows = [f"bench-{i}" for i in range(args.clients)]
    delivered = 0
    stop = False

    async def waiter(workflow_id: str) -> None:
        nonlocal delivered
        after = 0
        while not stop:
            events = await progress.wait.remote(workflow_id, after, 1.0)
            delivered += len(events)
            after = events[-1].seq if events else after

    tasks = [asyncio.create_task(waiter(w)) for w in workflows]
    await asyncio.sleep(1.0)
    started, published = time.monotonic(), 0
    while time.monotonic() - started < args.actor_s:
        seq = published // len(workflows) + 1
        event = Event(
            workflow_id=workflows[published % len(workflows)],
            seq=seq,
            type=EventType.job_progress,
            ts=time.time(),
            data={"job_id": "j", "done": seq, "total": 10**9},
        )
        await progress.publish.remote([("bench", event)])
        published += 1
    elapsed_s = time.monotonic() - started
    await asyncio.sleep(1.0)
    stop = True
    await asyncio.gather(*tasks)
    print(f"phase 2: ProgressActor alone, {args.clients} long-polls waiting, one event per publish call")
    print(f"  published:                 {published / elapsed_s:8.0f} events/s")
    print(f"  delivered to long-polls:   {delivered / elapsed_s:8.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--job-s", type=float, default=8.0)
    parser.add_argument("--actor-s", type=float, default=5.0)
    parser.add_argument("--connect-s", type=float, default=5.0, help="time given to open every stream")
    args = parser.parse_args()
    with bench_service() as (settings, base):
        asyncio.run(phase_streams(args, base, settings.data_roots[0]))
        asyncio.run(phase_actor(args, settings.namespace))


if __name__ == "__main__":
    main()
