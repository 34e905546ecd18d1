"""How long a dead or misconfigured judge holds an SHR run, with the default settings, before it fails.

Judges the descriptions of a 16-image shapes-world SHR set with ``hadpo shr-judge`` (the real command, the real
``openai`` client, every judge parameter at its default) against a loopback server that fails in one way, and
records the exit code, the seconds until the command returned and the requests the server received:

* ``dead``: the server answers 500 to every request;
* ``dies``: it answers the probe, then 500 to everything;
* ``wrong_key``: 401 to everything; ``unknown_model``: 404 to everything;
* ``refused``: nothing listens at the address.

Details go to stderr; the last line on stdout is one JSON object ``{scenario: {"rc", "seconds", "requests"}}``.

Run: ``python benchmarks/dead_judge.py``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path

from hadpo.cli import main as hadpo
from hadpo.distributed import free_port
from hadpo.judge.stub_server import StubChatServer, StubResponse
from hadpo.world import WorldConfig, generate_world

KEY_ENV = "HADPO_BENCH_JUDGE_KEY"
IMAGES = 16


def error(status: int, message: str) -> StubResponse:
    return StubResponse(status=status, body={"error": {"message": message}})


SCENARIOS: dict[str, tuple[list[StubResponse], StubResponse | None]] = {
    "dead": ([], error(500, "internal error")),
    "dies": ([StubResponse()], error(500, "internal error")),
    "wrong_key": ([], error(401, "Incorrect API key provided")),
    "unknown_model": ([], error(404, "The model does not exist")),
}


def judge(world: Path, responses: Path, run_dir: Path, url: str) -> tuple[int, float, str]:
    """Exit code, seconds and stderr of ``hadpo shr-judge`` with every judge parameter at its default."""
    err = StringIO()
    start = time.perf_counter()
    with redirect_stderr(err):
        rc = hadpo(["shr-judge", str(responses), "-p", "data_root", str(world), "-p", "run_dir", str(run_dir),
                    "-p", "judge", "openai", "-p", "base_url", url, "-p", "api_key_env", KEY_ENV,
                    "-p", "progress", "False"])
    return rc, time.perf_counter() - start, err.getvalue().strip()


def main() -> int:
    import os

    os.environ[KEY_ENV] = "benchmark-placeholder-value"
    results: dict[str, dict[str, float | int]] = {}
    with tempfile.TemporaryDirectory(prefix="dead_judge_") as tmp:
        folder = Path(tmp)
        world = generate_world(folder / "data", WorldConfig(seed=0, train_images=1, pope_images=0,
                                                            shr_images=IMAGES))
        ids = [str(entry["image_id"]) for entry in json.loads((world / "shr" / "val_images_final.json").read_text())]
        responses = folder / "responses.json"
        responses.write_text(json.dumps({i: "There is a red circle. There is a blue square." for i in ids}))
        for name, (first, always) in SCENARIOS.items():
            with StubChatServer(lambda body: "Judgement:\n1. correct: x\n2. correct: y") as server:
                server.fail_next(first)
                server.fail_always(always)
                rc, seconds, err = judge(world, responses, folder / name, server.url)
                results[name] = {"rc": rc, "seconds": round(seconds, 2), "requests": server.count}
            print(f"{name}: exit {rc} after {seconds:.2f} s, {server.count} requests: {err}", file=sys.stderr)
        rc, seconds, err = judge(world, responses, folder / "refused", f"http://127.0.0.1:{free_port('127.0.0.1')}/v1")
        results["refused"] = {"rc": rc, "seconds": round(seconds, 2), "requests": 0}
        print(f"refused: exit {rc} after {seconds:.2f} s: {err}", file=sys.stderr)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
