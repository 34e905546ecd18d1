"""Descriptions on the tiny LLaVA: batched beams equal one-by-one, resumable output, recorded protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hadpo.errors import DataError, ParamsError
from hadpo.io import read_jsonl
from hadpo.models.describe import describe_images, effective_batch_size, protocol_path
from hadpo.specs import DecodingSpec as DescribeParams


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, Path]]:
    """Noise images of several shapes (square and not), so padding to a square matters."""
    folder = tmp_path_factory.mktemp("describe_images")
    rng = np.random.default_rng(0)
    out = []
    for i, (w, h) in enumerate([(48, 48), (60, 40), (40, 70), (48, 48), (30, 30)]):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        out.append((100 + i, path))
    return out


@pytest.mark.parametrize("num_beams", [1, 5])
def test_batched_generation_gives_the_one_by_one_text(tiny_loaded, images, tmp_path, num_beams):
    one = describe_images(images, tmp_path / "one.jsonl", tiny_loaded,
                          DescribeParams(num_beams=num_beams, max_new_tokens=12, batch_size=1), progress=False)
    batched = describe_images(images, tmp_path / "batched.jsonl", tiny_loaded,
                              DescribeParams(num_beams=num_beams, max_new_tokens=12, batch_size=3), progress=False)
    assert [r["response"] for r in batched] == [r["response"] for r in one]
    assert [r["num_tokens"] for r in batched] == [r["num_tokens"] for r in one]
    assert all(0 < r["num_tokens"] <= 12 for r in one)


def test_rerun_skips_done_images_and_survives_a_torn_line(tiny_loaded, images, tmp_path):
    out = tmp_path / "desc.jsonl"
    params = DescribeParams(num_beams=2, max_new_tokens=6, batch_size=2)
    describe_images(images[:3], out, tiny_loaded, params, progress=False)
    # mark a finished record: a rerun must keep it as is, not regenerate it
    lines = out.read_text().splitlines()
    first = json.loads(lines[0])
    first["response"] = "kept from the first run"
    out.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n" + '{"image_id": 104, "resp')  # killed mid-write
    records = describe_images(images, out, tiny_loaded, params, progress=False)
    assert [r["image_id"] for r in records] == [100, 101, 102, 103, 104]
    assert records[0]["response"] == "kept from the first run"
    assert [r["image_id"] for r in read_jsonl(out)] == [100, 101, 102, 103, 104]  # torn line gone, no repeats


def test_protocol_is_recorded_and_a_different_one_refuses_to_resume(tiny_loaded, tiny_model_dir, images, tmp_path):
    out = tmp_path / "desc.jsonl"
    describe_images(images[:1], out, tiny_loaded, DescribeParams(num_beams=3, max_new_tokens=4, batch_size=4),
                    progress=False)
    protocol = json.loads(protocol_path(out).read_text())
    assert protocol["model"] == str(tiny_model_dir) and protocol["adapter"] is None
    assert protocol["decoding"] == {"num_beams": 3, "max_new_tokens": 4, "do_sample": False}
    assert protocol["template"] == "llava_v1" and protocol["instruction"] == "Describe this image in detail."
    assert protocol["dtype"] == "float32" and protocol["batch_size"] == 4 and protocol["image_mode"] == "pad"
    assert protocol["environment"]["versions"]["transformers"]
    with pytest.raises(ParamsError, match="decoding"):
        describe_images(images, out, tiny_loaded, DescribeParams(num_beams=1, max_new_tokens=4), progress=False)


def test_beam_batching_can_be_switched_off():
    assert effective_batch_size(DescribeParams(num_beams=5, batch_size=8, batch_beams=False)) == 1
    assert effective_batch_size(DescribeParams(num_beams=1, batch_size=8, batch_beams=False)) == 8


def test_unreadable_image_names_file_and_id(tiny_loaded, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="record '7'"):
        describe_images([("7", bad)], tmp_path / "d.jsonl", tiny_loaded, DescribeParams(max_new_tokens=2),
                        progress=False)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_a_killed_and_resumed_sampled_run_equals_an_uninterrupted_one(tiny_loaded, images, tmp_path, num_beams):
    params = DescribeParams(num_beams=num_beams, max_new_tokens=12, batch_size=2, do_sample=True,
                            sample_top_p=0.9, sample_seed=7)
    whole = tmp_path / "whole.jsonl"
    describe_images(images, whole, tiny_loaded, params, progress=False)
    resumed = tmp_path / "resumed.jsonl"
    describe_images(images[:2], resumed, tiny_loaded, params, progress=False)  # killed after the first batch
    with resumed.open("a") as fh:
        fh.write('{"image_id": 102, "resp')  # ...while writing the second
    describe_images(images, resumed, tiny_loaded, params, progress=False)
    assert resumed.read_bytes() == whole.read_bytes()
    # Each image has its own seed: the batch it lands in does not matter, the run's seed does.
    alone = describe_images(images, tmp_path / "alone.jsonl", tiny_loaded, params.replace(batch_size=1),
                            progress=False)
    assert [r["response"] for r in alone] == [r["response"] for r in read_jsonl(whole)]
    other = describe_images(images, tmp_path / "other.jsonl", tiny_loaded, params.replace(sample_seed=8),
                            progress=False)
    assert [r["response"] for r in other] != [r["response"] for r in alone]


def test_items_with_their_own_questions_batch_like_one_by_one_and_keep_what_they_were_asked(
        tiny_loaded, images, tmp_path):
    asked = [(image_id, path, f"What is in image {k}?") for k, (image_id, path) in enumerate(images)]
    one = describe_images(asked, tmp_path / "one.jsonl", tiny_loaded,
                          DescribeParams(num_beams=1, max_new_tokens=8, batch_size=1), progress=False)
    out = tmp_path / "batched.jsonl"
    batched = describe_images(asked, out, tiny_loaded, DescribeParams(num_beams=1, max_new_tokens=8, batch_size=3),
                              progress=False)
    assert [r["response"] for r in batched] == [r["response"] for r in one]
    assert [r["instruction"] for r in batched] == [q for _, _, q in asked]
    assert json.loads(protocol_path(out).read_text())["instruction"] == "per item"
    changed = [*asked[:-1], (asked[-1][0], asked[-1][1], "Another question?")]
    with pytest.raises(ParamsError, match="was asked"):
        describe_images(changed, out, tiny_loaded, DescribeParams(num_beams=1, max_new_tokens=8, batch_size=3),
                        progress=False)


class _ThreadRanks:
    """Two ranks of one job as threads: rank files, barriers and rank 0's merge run as under torchrun."""

    def __init__(self, rank: int, barrier) -> None:
        self.rank, self.world_size, self._barrier = rank, 2, barrier

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        self._barrier.wait(timeout=120)


def test_two_ranks_write_what_one_process_writes(tiny_loaded, images, tmp_path):
    import threading

    params = DescribeParams(num_beams=1, max_new_tokens=8, batch_size=2)
    single = tmp_path / "single.jsonl"
    describe_images(images, single, tiny_loaded, params, progress=False)
    out = tmp_path / "ranks.jsonl"
    describe_images(images[:1], out, tiny_loaded, params, progress=False)  # a resumed run: one image is done
    barrier = threading.Barrier(2)
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def rank(r: int) -> None:
        try:
            results[r] = describe_images(images, out, tiny_loaded, params, progress=False,
                                         ctx=_ThreadRanks(r, barrier))  # type: ignore[arg-type]
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert out.read_bytes() == single.read_bytes()
    assert not list(tmp_path.glob("ranks.rank*.jsonl"))  # merged, then removed
    assert results[0] == results[1] == read_jsonl(single)
