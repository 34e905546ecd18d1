"""Judge throughput: requests in flight vs one at a time, and a rerun served from the reply cache.

Judges N synthetic descriptions through the real ``openai`` client against a loopback OpenAI-compatible
server that answers each request after a fixed latency (200 ms: a fast hosted model), first with one request
in flight, then with ``--concurrency`` (fresh caches for both), then reruns the concurrent judge on its now
warm cache. Details go to stderr; the last line on stdout is one JSON object::

    {"speedup": <serial seconds / concurrent seconds>, "rerun_requests": <requests the rerun made>}

Run: ``python benchmarks/judge_concurrency.py [--n 64] [--latency 0.2] [--concurrency 16]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from hadpo.eval.shr.judge import ShrItem, judge_descriptions, status_counts
from hadpo.eval.shr.prompt import NormalizedRegion, format_judgement
from hadpo.judge.openai_client import OpenAIChatClient
from hadpo.judge.stub_server import StubChatServer
from hadpo.specs import JudgeSpec

COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "cyan", "white")
SHAPES = ("circle", "square", "triangle", "cross")
COLUMNS = ("on the left", "in the middle", "on the right")


def items(n: int) -> list[ShrItem]:
    """``n`` distinct three-sentence descriptions with region and fact context."""
    out = []
    for i in range(n):
        sentences = [f"There is a {COLOURS[(i + k) % 8]} {SHAPES[(i * 3 + k) % 4]} {COLUMNS[k]}" for k in range(3)]
        regions = tuple(NormalizedRegion(k / 3, 0.3, (k + 1) / 3, 0.6, f"a shape {COLUMNS[k]}") for k in range(3))
        out.append(ShrItem(str(i), ". ".join(sentences) + ".", regions, (f"Image {i} has three objects.",)))
    return out


def answer(body: dict) -> str:
    """A well-formed judgement with one line per numbered sentence of the prompt."""
    block = body["messages"][0]["content"].split("Sentences to judge:\n", 1)[1]
    count = len(re.findall(r"^\d+\. ", block, flags=re.M))
    return format_judgement([("correct", "the region shows it")] * count)


def judge(server: StubChatServer, cache: Path, concurrency: int, data: list[ShrItem]) -> tuple[float, int]:
    """Seconds to judge ``data`` and requests the server received meanwhile."""
    spec = JudgeSpec(base_url=server.url, judge_model="bench-judge", api_key_env="",
                     judge_max_concurrency=concurrency)
    before = server.count
    start = time.perf_counter()
    with OpenAIChatClient(spec, cache_path=str(cache), progress=False) as client:
        result = judge_descriptions(data, client)
    elapsed = time.perf_counter() - start
    counts = status_counts(result["run1"])
    if counts["judged"] != len(data):
        raise RuntimeError(f"not every description was judged: {counts}")
    return elapsed, server.count - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="descriptions to judge")
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per reply")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight for the concurrent judge")
    args = parser.parse_args()
    data = items(args.n)
    with tempfile.TemporaryDirectory(prefix="judge_bench_") as tmp, StubChatServer(answer, delay=args.latency) as srv:
        folder = Path(tmp)
        judge(srv, folder / "warmup.sqlite", args.concurrency, data[:2])  # imports and first connection
        serial_s, serial_n = judge(srv, folder / "serial.sqlite", 1, data)
        concurrent_s, concurrent_n = judge(srv, folder / "concurrent.sqlite", args.concurrency, data)
        rerun_s, rerun_n = judge(srv, folder / "concurrent.sqlite", args.concurrency, data)
    speedup = serial_s / concurrent_s
    print(f"n={args.n} latency={args.latency}s: 1 in flight {serial_s:.2f} s ({serial_n} requests); "
          f"{args.concurrency} in flight {concurrent_s:.2f} s ({concurrent_n} requests, peak {srv.max_in_flight}); "
          f"rerun from cache {rerun_s:.3f} s ({rerun_n} requests); speedup {speedup:.1f}x", file=sys.stderr)
    print(json.dumps({"speedup": round(speedup, 2), "rerun_requests": rerun_n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
