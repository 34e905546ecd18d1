"""SHR metrics worked out by hand on a small example."""

from __future__ import annotations

import pytest

from hadpo.eval.shr.metrics import (
    length_stats,
    ngrams,
    repetition,
    repetition_tokens,
    run_metrics,
    shr_markdown,
    shr_metrics,
    shr_table,
)


def sent(text: str, label: str | None) -> dict:
    return {"model_response": text, "judgement": f"{label}: why" if label else None, "classification": label}


def record(status: str, *sentences: dict) -> dict:
    return {"raw_judgement": "", "model_response": "", "judgement": list(sentences), "status": status,
            "attempts": 1, "error": None}


RUN1 = {
    # 3 sentences: 5 + 5 + 3 words; one hallucination (5 words); "cannot judge" counts as not hallucinated
    "a": record("judged", sent("There is a red circle.", "correct"), sent("There is a blue square.", "hallucination"),
                sent("It looks calm.", "cannot judge")),
    # 1 sentence of 4 words, hallucinated
    "b": record("judged", sent("A dog runs fast.", "hallucination")),
    # left out of every per-run value, only counted
    "c": record("unjudged", sent("Something odd.", None)),
    "d": record("skipped", sent("Long one.", None)),
}
RUN2 = {
    "a": record("judged", sent("There is a red circle.", "correct"), sent("There is a blue square.", "correct"),
                sent("It looks calm.", "cannot judge")),
    "b": record("judged", sent("A dog runs fast.", "hallucination")),
    "c": record("judged", sent("Something odd.", "correct")),
    "d": record("skipped", sent("Long one.", None)),
}


def test_run_metrics_by_hand():
    m = run_metrics(RUN1)
    # 2 judged images; 4 sentences, 17 words; 2 hallucinated sentences of 5 + 4 = 9 words
    assert m["num_images"] == 2
    assert m["sents_per_image"] == 2.0 and m["words_per_image"] == 8.5
    assert m["hal_sents_per_image"] == 1.0 and m["hal_words_per_image"] == 4.5
    assert m["hal_sents_ratio"] == 0.5  # 2 / 4
    assert m["hal_words_ratio"] == 0.529  # 9 / 17 = 0.5294... rounded to 3 decimals
    assert (m["num_unjudged"], m["num_skipped"]) == (1, 1)
    assert (m["num_hal_sents"], m["num_correct_sents"], m["num_cannot_judge_sents"]) == (2, 1, 1)


def test_no_judged_image_gives_no_ratio_not_a_zero():
    # A judge that labelled nothing found nothing wrong: the ratio is undefined, never a perfect 0.
    m = run_metrics({"c": RUN1["c"]})
    assert m["num_images"] == 0 and m["hal_sents_ratio"] is None and m["num_unjudged"] == 1
    metrics = shr_metrics({"run1": {"c": RUN1["c"]}}, {"c": "x"})
    assert metrics["mean_hal_ratio"] is None and metrics["std_hal_ratio"] is None


def test_ngrams_and_repetition_by_hand():
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]
    assert ngrams(["a"], 2) == []
    assert repetition_tokens("A b, c.\nd: e?") == ["A", "b", "c", "d", "e"]
    responses = ["a b a b.", "c d"]
    # 1-gram: (2/4 + 2/2) / 2 = 0.75; 2-gram: (2/3 + 1/1) / 2 = 0.8333; 3-gram: only the first has any: 2/2
    assert repetition(responses, 1) == 0.75
    assert repetition(responses, 2) == 0.833
    assert repetition(responses, 3) == 1.0
    assert repetition([], 1) == 0.0


def test_length_stats_cover_every_image():
    stats = length_stats(["One two. Three.", "Four"], [5, 1])
    assert stats == {"num_images": 2, "words_per_image": 2.0, "sents_per_image": 1.5, "chars_per_image": 9.5,
                     "tokens_per_image": 3.0}


def test_shr_metrics_average_runs_and_keep_the_original_keys():
    responses = {"a": "There is a red circle. There is a blue square. It looks calm.", "b": "A dog runs fast.",
                 "c": "Something odd.", "d": "Long one."}
    m = shr_metrics({"run1": RUN1, "run2": RUN2}, responses)
    for key in ("run1", "run2", "gram-1-repetition", "gram-2-repetition", "gram-3-repetition",
                "gram-4-repetition", "mean_hal_ratio"):
        assert key in m
    # run2: 1 hallucinated of 5 labelled sentences = 0.2; mean of 0.5 and 0.2
    assert m["run2"]["hal_sents_ratio"] == 0.2
    assert m["mean_hal_ratio"] == 0.35
    assert m["std_hal_ratio"] == pytest.approx(0.212, abs=1e-3)
    assert m["unjudged"] == {"run1": 1, "run2": 0} and m["skipped"] == {"run1": 1, "run2": 1}
    assert m["num_runs"] == 2 and m["length"]["num_images"] == 4


def test_table_reports_shr_times_100():
    m = shr_metrics({"run1": RUN1}, {"a": "x y", "b": "z"})
    table = shr_table({"base": m})
    assert table.loc["base", "SHR (%)"] == 50.0
    assert table.loc["base", "hal words (%)"] == 52.9
    assert table.loc["base", "unjudged"] == 1
    markdown = shr_markdown({"base": m})
    assert markdown.splitlines()[0].startswith("| model | SHR (%)") and "| base | 50.0 |" in markdown


def test_judgement_files_of_the_original_code_can_be_rescored():
    # the original writes no status: an image whose sentences all got a label counts as judged
    original = {
        "a": {"raw_judgement": "...", "model_response": "A. B.",
              "judgement": [sent("A.", "hallucination"), sent("B.", "correct")]},
        "b": {"raw_judgement": "...", "model_response": "C.", "judgement": [sent("C.", None)]},
    }
    m = run_metrics(original)
    assert (m["num_images"], m["hal_sents_ratio"], m["num_unjudged"]) == (1, 0.5, 1)


def test_no_described_image_is_an_error_not_zeros() -> None:
    # SHR on zero images used to report num_images 0 and per-image means of 0.0
    with pytest.raises(ValueError, match="no described images"):
        shr_metrics({"run1": {}}, {})
