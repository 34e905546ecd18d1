"""Notebook 01's displays: every count of data_stats.json in a table (rates in %, counts as integers), and whole
training pairs with their images and the judge's hallucinated sentences highlighted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hadpo.mining import stage
from hadpo.mining.config import DataConfig
from hadpo.mining.stats import stats_rows, stats_table

HALLUCINATED = "There is a yellow cross on the right."
#: The judge's sentences of image 5's own description: one hallucinated, one correct.
CORRECTIONS = [
    {"image_id": "5", "status": "ok", "sentences": ["There is a red circle on the left.", HALLUCINATED],
     "labels": ["correct", "hallucination"]},
    {"image_id": "6", "status": "ok", "sentences": ["A tall blue square stands alone."],
     "labels": ["hallucination"]},
    {"image_id": "7", "status": "failed", "sentences": [], "labels": []},
]
LONG_TAIL = " It is followed by many more words so that a truncating table would cut this pair off here."


@pytest.fixture
def mined_files(tmp_path: Path) -> DataConfig:
    """A mining run's outputs as notebook 01 reads them, without running a model: the preference files, the
    judge's corrections and the selection (with image files)."""
    from PIL import Image

    data_root, run_dir = tmp_path / "data", tmp_path / "run"
    out = data_root / "hadpo" / "mined"
    out.mkdir(parents=True)
    (out / "desc_data.json").write_text(json.dumps({
        # Image 5's rejected rewrite keeps the hallucinated sentence verbatim; image 6's rewords it.
        "5": {"chosen": ["There is a red circle on the left." + LONG_TAIL],
              "rejected": ["There is a red circle on the left. " + HALLUCINATED + LONG_TAIL]},
        "6": {"chosen": ["Nothing else is there."], "rejected": ["One blue square, tall, stands alone."]},
    }))
    (out / "pope_data.json").write_text(json.dumps([
        {"image_id": 5, "question": "Is there a yellow cross in the image?", "answer": "no",
         "chosen": "No, there is no yellow cross.", "reject": "Yes, there is a yellow cross.", "correct": False},
    ]))
    run_dir.mkdir()
    (run_dir / "corrections.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CORRECTIONS))
    Image.new("RGB", (48, 48), (0, 0, 200)).save(tmp_path / "5.png")
    (run_dir / "selection.json").write_text(json.dumps({"images": [
        {"image_id": 5, "path": str(tmp_path / "5.png")}, {"image_id": 6, "path": str(tmp_path / "6.png")}]}))
    return DataConfig.from_dict({"source": "mine", "data_root": str(data_root), "run_dir": str(run_dir),
                                 "name": "mined"})


def test_pair_previews_are_whole_and_know_the_hallucinated_sentences(mined_files: DataConfig) -> None:
    pairs = stage.pair_previews(mined_files, n=3)
    # Offline sampling trains each description pair twice; the preview shows it once.
    assert [(p.kind, p.image_id) for p in pairs] == [("desc", "5"), ("desc", "6"), ("qa", "5")]
    assert pairs[0].rejected.endswith(LONG_TAIL) and pairs[0].chosen.endswith(LONG_TAIL)  # nothing cut
    assert pairs[0].hallucinated == (HALLUCINATED,) and pairs[1].hallucinated == ("A tall blue square stands alone.",)
    assert pairs[2].hallucinated == ()  # a QA pair: its rejected answer is the hallucination
    assert pairs[0].image_path is not None and pairs[0].image_path.name == "5.png"


def test_preview_shows_images_full_texts_and_marks_hallucinations(mined_files: DataConfig) -> None:
    html = stage.preview_pairs(mined_files, n=3)._repr_html_()
    assert html.count("<tr><td>") == 3
    assert len(re.findall(r'<img class="hadpo-thumb" src="data:image/png;base64,', html)) == 2  # image 5, twice
    assert "image not found" in html  # image 6's file does not exist: a placeholder, not an error
    assert html.count(LONG_TAIL.strip()) == 2  # chosen and rejected of image 5, in full
    assert f'<span class="hal" title="judge: hallucination">{HALLUCINATED}</span>{LONG_TAIL}' in html
    # Image 6's rewrite does not hold the judged sentence verbatim: it is still shown, from the description.
    assert ("reworded here; in the model's own description: "
            '<span class="hal">A tall blue square stands alone.</span>') in html
    assert "text-align: left !important" in html


def test_released_data_is_shown_without_claiming_which_sentences_hallucinate(mined_files: DataConfig) -> None:
    cfg = mined_files.replace(source="released", run_dir=str(Path(mined_files.run_dir).parent / "released-run"))
    desc = Path(cfg.run_dir)
    desc.mkdir()
    src = Path(mined_files.data_root) / "hadpo" / "mined"
    for name in ("desc_data.json", "pope_data.json"):
        (desc / name).write_text((src / name).read_text())
    html = stage.preview_pairs(cfg, n=1)._repr_html_()
    assert "does not say which sentences are hallucinated" in html and 'class="hal"' not in html
    assert HALLUCINATED in html


STATS = {
    "source": "mine",
    "images": {"selected": 40, "judged": 40},
    "sentences": {"judged": 83, "hallucination": 78, "hallucination_rate": 0.9398},
    "rewrites": {"mean_per_image": 1.0},
    "leaks": {"image_ids": list(range(38)), "excluded": True},
    "skipped": {"correct": {"count": 0, "by_reason": {}}},
    "qa": {"model_correct_rate": None},
}


def test_stats_rows_show_every_value_formatted_by_kind() -> None:
    rows, section = {}, ""
    for row in stats_rows(STATS):
        section = row["Section"] or section
        rows[section, row["Count"]] = row["Value"]
    assert rows["images", "selected"] == "40" and rows["sentences", "judged"] == "83"  # counts as integers
    assert rows["sentences", "hallucination rate"] == "94.0 %"  # every rate in %
    assert rows["rewrites", "mean per image"] == "1.00" and rows["leaks", "image ids"] == "38 listed"
    assert rows["leaks", "excluded"] == "yes" and rows["source", ""] == "mine"
    assert rows["skipped", "correct · by reason"] == "—" and rows["qa", "model correct rate"] == "—"
    sections = [r["Section"] for r in stats_rows(STATS)]
    assert sections[:4] == ["source", "images", "", "sentences"]  # each section named on its first row only


def test_stats_table_has_every_row_and_no_index() -> None:
    many = {"section": {f"count_{i}": i for i in range(70)}}
    table = stats_table(many)
    html = table._repr_html_()
    assert len(table.frame) == 70 and html.count("<tr>") == 71  # a header row and every value, none elided
    assert "row_heading" not in html and ">69<" in html
    assert "rates in %" in html
