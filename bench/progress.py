"""Progress-stream benchmark: latency from a state change to its arrival at SSE clients.

Phase 1 starts the real service, runs `--workflows` workflows whose jobs report progress several
times a second, and holds `--clients` SSE streams open on them over HTTP. For every event each
client receives it records arrival time minus the event's own timestamp (when the scheduler made
it). Prints p50 and p99 against the targets (p99 < 150 ms at 100 streams, < 500 ms at 1,000), and
checks every stream: it ran to its workflow's end (none dropped) with every sequence number once
(none lost or duplicated). The peer, measured just before in the same run, is the same on other
workflows of the same shape with one stream each: the same events through the same path with no
fan-out to speak of, so what the watchers add shows beside what this machine's hops cost today.
Then the CPU each process used while the events came (the clients' own included: time the
service did not get).

Phase 2 measures what ProgressActor's feed sustains alone: `--replicas` feed long-polls (one per
API replica, as the service holds them) while the driver publishes batches of `--batch` events as
fast as it can; prints published and delivered events/s (target >= 5,000 published).

The clients share this process and the machine with the service. By default they read with
aiohttp, whose HTTP parser is C: with httpx's pure-Python one (`--client httpx`), 1,000 streams
take the clients about a core of this 2-core machine, and their own lag shows up as latency.

    python bench/progress.py [--clients 100 --workflows 20 --job-s 8]
    python bench/progress.py --clients 1000
    python bench/progress.py --clients 1000 --ingress haproxy [--api-replicas 1]   # HAProxy in front
    python bench/progress.py --client httpx    # the clients as the CLI reads (httpx, httpx-sse)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import sys
import time
from collections.abc import Coroutine
from pathlib import Path

import aiohttp
import httpx
from httpx_sse import aconnect_sse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray

from bench.processes import cpu_seconds, print_cpu
from tests.support.service import Api, bench_service
from wfsched.config import Settings
from wfsched.control.actors import PROGRESS_NAME
from wfsched.control.messages import Pickled
from wfsched.models.event import Event, EventType


class Arrivals:
    """What every client records: each live event's latency, and how many streams have opened."""

    def __init__(self) -> None:
        self.live_from = float("inf")
        """Set once every stream is open: events made before are not timed."""
        self.latencies_ms: list[float] = []
        self.opened = 0

    def arrived(self, data: str | bytes, at: float, seqs: list[int]) -> bool:
        """Record one event's `data`, arrived `at` on the stream whose seqs are `seqs`; True once
        it was the workflow's last.

        Events made before `live_from` are not timed: they are history replayed to a client that
        just connected, not live progress.
        """
        event = json.loads(data)
        if not seqs:
            self.opened += 1  # open, and its history is arriving
        if event["ts"] >= self.live_from:
            self.latencies_ms.append(1000 * (at - event["ts"]))
        seqs.append(event["seq"])
        return bool(event["type"] == EventType.workflow_finished)


async def read_with_httpx(base: str, user: str, workflow_id: str, arrivals: Arrivals) -> list[int]:
    """Read one workflow's stream to its end as the CLI does; return the seqs."""
    seqs: list[int] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=None) as client,
        aconnect_sse(client, "GET", f"/api/progress/{workflow_id}/stream", headers={"X-User-ID": user}) as source,
    ):
        async for message in source.aiter_sse():
            if message.data and arrivals.arrived(message.data, time.time(), seqs):
                break
    return seqs


async def read_with_aiohttp(
    session: aiohttp.ClientSession, base: str, user: str, workflow_id: str, arrivals: Arrivals
) -> list[int]:
    """Read one workflow's stream to its end, line by line; return the seqs. The service writes
    each event's data on one `data:` line (and `id:`, `event:` and keep-alive comments beside it)."""
    seqs: list[int] = []
    async with session.get(f"{base}/api/progress/{workflow_id}/stream", headers={"X-User-ID": user}) as response:
        response.raise_for_status()
        async for line in response.content:
            if line.startswith(b"data:") and arrivals.arrived(line[5:], time.time(), seqs):
                break
    return seqs


@dataclasses.dataclass
class StreamsRun:
    """What one phase of streams measured."""

    clients: int
    opened: int
    live_s: float
    cpu: list[tuple[str, float, dict[int, tuple[str, float]]]]
    """Each process's CPU before and after the events came (`print_cpu`'s phases)."""
    latencies_ms: list[float]
    failed: list[BaseException]
    dropped: list[list[int]]
    broken: list[list[int]]

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_streams(args: argparse.Namespace, base: str, data_dir: Path, clients: int, name: str) -> StreamsRun:
    """`args.workflows` workflows, each holding until all `clients` streams on them are open, then
    running a job that reports progress; every stream read to its workflow's end."""
    users = [Api(base, f"bench-user-{u}") for u in range(3)]  # within the active-user limit
    release = data_dir / f"release-{name}"
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
    created = [users[i % len(users)].submit(jobs, name=f"{name}-{i}") for i in range(args.workflows)]
    arrivals = Arrivals()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), connector=aiohttp.TCPConnector(limit=0))

    def read(user: str, workflow_id: str) -> Coroutine[None, None, list[int]]:
        if args.client == "httpx":
            return read_with_httpx(base, user, workflow_id, arrivals)
        return read_with_aiohttp(session, base, user, workflow_id, arrivals)

    streams = [
        asyncio.create_task(
            read(users[i % args.workflows % len(users)].user, created[i % args.workflows]["workflow_id"])
        )
        for i in range(clients)
    ]
    # Live begins once every stream is open and has its history (or at --connect-s at the latest).
    deadline = time.monotonic() + args.connect_s
    while arrivals.opened < clients and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the last ones' history
    opened = arrivals.opened
    arrivals.live_from = time.time()
    cpu = [("", time.time(), cpu_seconds())]
    started = time.monotonic()
    release.write_text("go")
    seqs = await asyncio.gather(*streams, return_exceptions=True)
    live_s = time.monotonic() - started
    cpu.append(("the events came", time.time(), cpu_seconds()))
    await session.close()
    complete = [s for s in seqs if not isinstance(s, BaseException)]
    return StreamsRun(
        clients=clients,
        opened=opened,
        live_s=live_s,
        cpu=cpu,
        latencies_ms=arrivals.latencies_ms,
        failed=[s for s in seqs if isinstance(s, BaseException)],
        dropped=[s for s in complete if not s or s[-1] != max(s)],
        broken=[s for s in complete if s != list(range(1, len(s) + 1))],
    )


async def phase_streams(args: argparse.Namespace, base: str, data_dir: Path) -> None:
    """The peer first (one stream a workflow: the same events, no fan-out to speak of), then the
    streams asked for, on new workflows of the same shape."""
    peer = await run_streams(args, base, data_dir, args.workflows, "peer")
    run = await run_streams(args, base, data_dir, args.clients, "streams")
    target_ms = 150 if args.clients <= 100 else 500
    print(f"  {run.opened} of {run.clients} streams open before the events began")
    print(
        f"phase 1: {args.clients} SSE clients ({args.client}) on {args.workflows} workflows over HTTP "
        f"({args.ingress} ingress, {args.api_replicas} API replicas), {run.live_s:.1f} s live"
    )
    delivered = len(run.latencies_ms)
    print(f"  live events delivered:     {delivered:8d}  ({delivered / run.live_s:.0f}/s to clients)")
    print(f"  latency p50:               {run.p(0.5):8.1f} ms")
    print(f"  latency p99:               {run.p(0.99):8.1f} ms  (target < {target_ms} ms)")
    print(f"  latency max:               {max(run.latencies_ms):8.1f} ms")
    print(
        f"  peer: one stream a workflow ({peer.clients}, the same events, just before): "
        f"p50 {peer.p(0.5):.1f} ms, p99 {peer.p(0.99):.1f} ms"
    )
    print(f"  streams failed / dropped:  {len(run.failed):4d} / {len(run.dropped)}  (target 0 / 0)")
    print(f"  streams with an event lost or repeated: {len(run.broken)}  (target 0)")
    for error in run.failed[:3]:
        print(f"    {type(error).__name__}: {error}")
    for seqs_of_one in run.broken[:3]:
        missing = sorted(set(range(1, max(seqs_of_one) + 1)) - set(seqs_of_one))
        repeated = sorted({q for q in seqs_of_one if seqs_of_one.count(q) > 1})
        print(f"    {len(seqs_of_one)} events: missing {missing[:10]}, repeated {repeated[:10]}")
    print_cpu(run.cpu)
    if peer.failed or peer.dropped or peer.broken:
        failures = f"{len(peer.failed)} / {len(peer.dropped)} / {len(peer.broken)}"
        print(f"  peer streams failed / dropped / lost or repeated: {failures}")


async def phase_actor(args: argparse.Namespace, namespace: str) -> None:
    progress = ray.get_actor(PROGRESS_NAME, namespace=namespace)
    # The feed takes ids in order, without gaps, as the scheduler's store gives them: continue
    # from the newest. (The service is stopped after this phase: its own next ids are taken.)
    first_id = await progress.last_event_id.remote()
    delivered = [0] * args.replicas
    stop = False

    async def feed(replica: int) -> None:
        after = first_id
        while not stop:
            events = await progress.feed.remote(after, 1.0)
            delivered[replica] += len(events)
            after = events[-1][1].id if events else after

    tasks = [asyncio.create_task(feed(r)) for r in range(args.replicas)]
    await asyncio.sleep(1.0)
    started, published = time.monotonic(), 0
    while time.monotonic() - started < args.actor_s:
        batch = []
        for _ in range(args.batch):
            published += 1
            event = Event(
                workflow_id=f"bench-{published % 100}",
                seq=published,
                id=first_id + published,
                type=EventType.job_progress,
                ts=time.time(),
                data={"job_id": "j", "done": published, "total": 10**9},
            )
            batch.append(("bench", event))
        await progress.publish.remote(Pickled(batch))  # as the scheduler sends them
    elapsed_s = time.monotonic() - started
    await asyncio.sleep(1.0)
    stop = True
    await asyncio.gather(*tasks)
    print(f"phase 2: ProgressActor's feed alone, {args.replicas} replica feeds, {args.batch} events a publish")
    print(f"  published:                 {published / elapsed_s:8.0f} events/s  (target >= 5,000)")
    print(f"  delivered to each feed:    {min(delivered) / elapsed_s:8.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument(
        "--ingress", choices=["serve", "haproxy"], default="serve", help="what answers HTTP (WFSCHED_INGRESS)"
    )
    parser.add_argument(
        "--client", choices=["aiohttp", "httpx"], default="aiohttp", help="how the clients read their streams"
    )
    parser.add_argument("--api-replicas", type=int, default=0, help="API replicas (default: one per 700 streams)")
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--job-s", type=float, default=8.0)
    parser.add_argument("--actor-s", type=float, default=5.0)
    parser.add_argument("--replicas", type=int, default=2, help="feed long-polls in phase 2 (one per API replica)")
    parser.add_argument("--batch", type=int, default=100, help="events per publish call in phase 2")
    parser.add_argument("--connect-s", type=float, default=120.0, help="the most time given to open every stream")
    args = parser.parse_args()
    # Each stream is a socket here and one in the service: 1,000 streams pass the usual 1,024 limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65_536)), hard))
    # The per-user stream limit is lifted (three users hold every stream); each replica takes its
    # share of the streams (WFSCHED_MAX_STREAMS_PER_REPLICA, its default raised if need be).
    args.api_replicas = args.api_replicas or -(-args.clients // 700)
    with bench_service(
        max_streams_per_user=args.clients,
        api_replicas=args.api_replicas,
        max_streams_per_replica=max(Settings.model_fields["max_streams_per_replica"].default, args.clients),
        ingress=args.ingress,
    ) as (settings, base):
        asyncio.run(phase_streams(args, base, settings.data_roots[0]))
        asyncio.run(phase_actor(args, settings.namespace))


if __name__ == "__main__":
    main()
