"""The serving benchmark's load generator: N keep-alive HTTP/1.1 connections, requests back to back.

Run as its own process (the same for every contender), on the same machine as the servers:

    python benchmarks/_loadgen.py '{"port": 8000, "path": "/predict/bench", "bodies": "bodies.jsonl",
                                    "concurrency": 8, "duration": 10}'

Each connection sends its requests one after the other (the next as soon as the response is read) until the
duration is over or the request cap is reached; latency is timed per request, from the first byte written to
the last byte read. Raw asyncio streams (no HTTP client library) keep the generator's own cost per request
low. ``bodies`` is a JSON-lines file of request bodies, cycled through (each connection starts at its own
offset); without it the requests are GETs. Errors: a non-2xx status, a timeout, or a broken connection (the
connection is then reopened). Prints one JSON line: requests, errors, a few error samples, elapsed seconds,
requests/s (successful ones), latency percentiles in ms, the generator's own CPU time per request.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

REQUEST_TIMEOUT_S = 30.0


def _requests(args: dict[str, Any]) -> list[bytes]:
    host = f"127.0.0.1:{args['port']}"
    path = args["path"]
    if not args.get("bodies"):
        return [f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()]
    with open(args["bodies"], "rb") as lines:
        bodies = [line.rstrip(b"\n") for line in lines if line.strip()]
    return [
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
        for body in bodies
    ]


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, keep = 0, False, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            keep = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep


async def _connection(
    args: dict[str, Any], requests: list[bytes], offset: int, stop_at: float, state: dict[str, Any]
) -> None:
    latencies: list[float] = state["latencies"]
    index = offset
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while time.perf_counter() < stop_at and state["sent"] < args["max_requests"]:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", args["port"])
            assert reader is not None
            request = requests[index % len(requests)]
            index += 1
            state["sent"] += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                status, keep = await asyncio.wait_for(_response(reader), REQUEST_TIMEOUT_S)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
                _error(state, f"{type(exc).__name__}: {exc}")
                writer.close()
                writer = None
                await asyncio.sleep(0.01)
                continue
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - started)
            else:
                _error(state, f"HTTP {status}")
            if not keep:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def _error(state: dict[str, Any], what: str) -> None:
    state["errors"] += 1
    if len(state["samples"]) < 5:
        state["samples"].append(what)


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def _run(args: dict[str, Any]) -> dict[str, Any]:
    requests = _requests(args)
    state: dict[str, Any] = {"latencies": [], "errors": 0, "samples": [], "sent": 0}
    started, cpu = time.perf_counter(), time.process_time()
    stop_at = started + args["duration"]
    step = max(1, len(requests) // args["concurrency"])
    workers = [_connection(args, requests, i * step, stop_at, state) for i in range(args["concurrency"])]
    # every worker stops by itself; the outer bound only guards against a server that hangs mid-response
    await asyncio.wait_for(asyncio.gather(*workers), args["duration"] + REQUEST_TIMEOUT_S + 10)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    ordered = sorted(state["latencies"])
    return {
        "requests": len(ordered) + state["errors"],
        "ok": len(ordered),
        "errors": state["errors"],
        "error_samples": state["samples"],
        "elapsed_s": elapsed,
        "rps": len(ordered) / elapsed,
        "p50_ms": _percentile(ordered, 0.50),
        "p99_ms": _percentile(ordered, 0.99),
        "max_ms": ordered[-1] * 1000 if ordered else None,
        "generator_cpu_ms": cpu * 1000 / max(len(ordered) + state["errors"], 1),
    }


def main() -> None:
    args = {"concurrency": 1, "duration": 10.0, "max_requests": 5_000_000, "bodies": None, **json.loads(sys.argv[1])}
    print(json.dumps(asyncio.run(_run(args))))


if __name__ == "__main__":
    main()
