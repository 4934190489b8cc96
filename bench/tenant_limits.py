"""One tenant against the rest: 1,000 stream attempts from one user while another works.

A hog opens `--attempts` SSE streams on `/api/events` at once and holds those it gets for
`--hold-s`; meanwhile another user lists their workflows `--requests` times and /healthz is polled.
Prints the other user's p50/p95 latency (target p95 < 200 ms), /healthz answers (target: all 200),
and how many of the hog's streams were opened and refused. The peer, in the same run, is the same
service with the stream limits lifted (what wfsched did before them).

    python bench/tenant_limits.py [--attempts 1000 --requests 200 --hold-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ray import serve

from tests.support.service import bench_service, wait_healthy
from wfsched.api.ingress import build_app
from wfsched.api.joined import SERVE_APP_NAME
from wfsched.config import Settings


async def hog_stream(client: httpx.AsyncClient, user: str, hold_s: float, statuses: list[int]) -> None:
    try:
        async with client.stream("GET", "/api/events", headers={"X-User-ID": user}) as response:
            statuses.append(response.status_code)
            if response.status_code == 200:
                deadline = time.monotonic() + hold_s
                async for _ in response.aiter_lines():
                    if time.monotonic() > deadline:
                        break
    except httpx.HTTPError as error:
        statuses.append(type(error).__name__)  # type: ignore[arg-type]


async def phase(base: str, args: argparse.Namespace, label: str) -> None:
    statuses: list[int] = []
    latencies_ms: list[float] = []
    health: list[object] = []
    failures: list[str] = []
    limits = httpx.Limits(max_connections=args.attempts + 50, max_keepalive_connections=args.attempts + 50)
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30.0), limits=limits) as hog_client,
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5.0)) as other,
    ):
        hog = [asyncio.create_task(hog_stream(hog_client, "hog", args.hold_s, statuses)) for _ in range(args.attempts)]
        await asyncio.sleep(1.0)  # the attempts are in flight
        for i in range(args.requests):
            started = time.perf_counter()
            try:
                response = await other.get("/api/workflows", headers={"X-User-ID": "other"})
                ok = response.status_code == 200
                failure = str(response.status_code)
            except httpx.HTTPError as error:
                ok, failure = False, type(error).__name__
            latencies_ms.append(1000 * (time.perf_counter() - started) if ok else float("inf"))
            if not ok:
                failures.append(f"{failure} after {time.perf_counter() - started:.1f} s at request {i}")
            if i % 5 == 0:
                try:
                    health.append((await other.get("/healthz")).status_code)
                except httpx.HTTPError as error:
                    health.append(type(error).__name__)
            await asyncio.sleep(0.05)
        await asyncio.gather(*hog)
    ordered = sorted(latencies_ms)
    opened, refused = statuses.count(200), statuses.count(429)
    print(f"{label}:")
    print(
        f"  hog's {args.attempts} stream attempts: {opened} opened, {refused} refused (429), "
        f"{len(statuses) - opened - refused} other"
    )
    print(f"  other user's list p50:    {statistics.median(ordered):8.1f} ms")
    print(f"  other user's list p95:    {ordered[int(0.95 * len(ordered)) - 1]:8.1f} ms  (target < 200 ms)")
    print(f"  other user's failures:    {sum(x == float('inf') for x in ordered):8d} of {len(ordered)}")
    if failures:
        print(f"  the failures:             {'; '.join(failures)}")
    refusals = [h for h in health if h != 200]
    print(
        f"  /healthz answers:         {len(health) - len(refusals)} of {len(health)} were 200  (target: all) {refusals}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--hold-s", type=float, default=20.0)
    args = parser.parse_args()
    with bench_service() as (settings, base):
        asyncio.run(phase(base, args, f"wfsched, limits on ({settings.max_streams_per_user} streams per user)"))
        unlimited: Settings = settings.model_copy(
            update={"max_streams_per_user": 10**6, "max_streams_per_replica": 10**6}
        )
        serve.run(build_app(unlimited), name=SERVE_APP_NAME, route_prefix="/")
        wait_healthy(base)
        asyncio.run(phase(base, args, "peer: the same service with no stream limits (as before)"))


if __name__ == "__main__":
    main()
