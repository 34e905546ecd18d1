"""The two countings on one hand-made fixture, with every expected number worked out by hand.

Five descriptions and the judge's (scripted, always identical) reply to each:

====  ==============================  =========================================  ==============================
img   sentences (words)               reply lines after "Judgement:"             what is off
====  ==============================  =========================================  ==============================
A     dog runs / cat sits / bird      correct / hallucination / correct          nothing
      flies (3 + 3 + 3 words)
B     red ball / blue box (3 + 3)     hallucination / ``correct : ok``           a space before the colon
C     tree / car / house (2+2+2)      correct / ``maybe`` / correct              an unknown label
D     man walks / woman talks (3+3)   one line for two sentences                 wrong line count
E     boat floats (3)                 ``   1. hallucination`` (indented)         indentation
====  ==============================  =========================================  ==============================

kit: B and E read cleanly (labels stripped); C and D are asked again (3 asks each, the same reply) and stay
unjudged, out of every count. Counted: A, B, E: 3 images, 6 sentences (18 words), all labelled, hallucinated
A2, B1, E1 = 3 sentences (9 words) → SHR 3/6 = 0.5, words 9/18 = 0.5; per image: 2.0 sentences, 6.0 words,
1.0 hallucinated sentences, 3.0 hallucinated words. Requests: 1 + 1 + 3 + 3 + 1 = 9.

original: no re-ask (every reply has a Judgement: line). B's ``correct `` and E's ``1. hallucination`` are not
labels, C's ``maybe`` neither, D has no label at all but stays in: 5 images, 11 sentences (30 words); labelled
A3, B1, C2 = 6 sentences (16 words), hallucinated A2, B1 = 2 sentences (6 words) → SHR 2/6 = 0.333, words 6/16 =
0.375; per image: 11/5 = 2.2 sentences, 30/5 = 6.0 words, 2/5 = 0.4 hallucinated sentences, 6/5 = 1.2 words.
Requests: 5. (The original code's own functions give the same seven numbers on this fixture.)
"""

from __future__ import annotations

import pytest

from hadpo.eval.shr.judge import ShrItem, ShrProtocol, judge_run
from hadpo.eval.shr.metrics import run_metrics, shr_metrics
from hadpo.judge.base import ChatRequest
from hadpo.judge.local import LocalChatClient

FIXTURE = {
    "A": ("A dog runs. A cat sits. A bird flies.",
          "Judgement:\n1. correct: ok\n2. hallucination: no cat\n3. correct: ok"),
    "B": ("A red ball. A blue box.", "Judgement:\n1. hallucination: no ball\n2. correct : ok"),
    "C": ("A tree. A car. A house.", "Judgement:\n1. correct: ok\n2. maybe: unsure\n3. correct: ok"),
    "D": ("A man walks. A woman talks.", "Judgement:\n1. hallucination: no man"),
    "E": ("A boat floats.", "Judgement:\n   1. hallucination: no boat"),
}
ITEMS = [ShrItem(image_id, description) for image_id, (description, _) in FIXTURE.items()]


def judge(counting: str) -> tuple[dict, LocalChatClient]:
    def respond(request: ChatRequest) -> str:
        return FIXTURE[request.context["image_id"]][1]

    client = LocalChatClient(respond, name="scripted")
    return judge_run(ITEMS, client, protocol=ShrProtocol(counting=counting, max_attempts=3)), client


def test_kit_counting_by_hand():
    run, client = judge("kit")
    assert {i: r["status"] for i, r in run.items()} == {"A": "judged", "B": "judged", "C": "unjudged",
                                                         "D": "unjudged", "E": "judged"}
    assert [e["classification"] for e in run["B"]["judgement"]] == ["hallucination", "correct"]
    assert [e["classification"] for e in run["E"]["judgement"]] == ["hallucination"]
    assert run["C"]["attempts"] == 3 and "unknown label 'maybe'" in run["C"]["error"]
    assert client.faults()["requests"] == 9
    m = run_metrics(run, "kit")
    assert (m["num_images"], m["num_sents"], m["num_hal_sents"], m["num_unjudged"]) == (3, 6, 3, 2)
    assert (m["hal_sents_ratio"], m["hal_words_ratio"]) == (0.5, 0.5)
    assert (m["sents_per_image"], m["words_per_image"]) == (2.0, 6.0)
    assert (m["hal_sents_per_image"], m["hal_words_per_image"]) == (1.0, 3.0)
    assert m["num_unlabelled_sents"] == 0


def test_original_counting_by_hand():
    run, client = judge("original")
    assert client.faults()["requests"] == 5  # the original asks again only when "Judgement" is missing
    assert [e["classification"] for e in run["B"]["judgement"]] == ["hallucination", "correct "]
    assert [e["classification"] for e in run["C"]["judgement"]] == ["correct", "maybe", "correct"]
    assert [e["classification"] for e in run["E"]["judgement"]] == ["1. hallucination"]
    assert run["D"]["status"] == "unjudged" and run["D"]["reason"] == "wrong line count"
    assert [e["classification"] for e in run["D"]["judgement"]] == [None, None]
    m = run_metrics(run, "original")
    assert (m["num_images"], m["num_sents"], m["num_hal_sents"], m["num_unjudged"]) == (5, 11, 2, 1)
    assert (m["hal_sents_ratio"], m["hal_words_ratio"]) == (0.333, 0.375)
    assert (m["sents_per_image"], m["words_per_image"]) == (2.2, 6.0)
    assert (m["hal_sents_per_image"], m["hal_words_per_image"]) == (0.4, 1.2)
    assert m["num_unlabelled_sents"] == 5  # B1, C1, D2, E1


@pytest.mark.parametrize("counting,shr", [("kit", 0.5), ("original", 0.333)])
def test_metrics_file_records_the_counting(counting, shr):
    run, _ = judge(counting)
    metrics = shr_metrics({"run1": run}, {i.image_id: i.response for i in ITEMS}, counting=counting)
    assert metrics["mean_hal_ratio"] == shr and metrics["counting"] == counting


def test_with_clean_replies_both_countings_agree():
    clean = {k: (d, r.replace("correct : ok", "correct: ok").replace("maybe", "correct").replace("   1.", "1."))
             for k, (d, r) in FIXTURE.items() if k != "D"}

    def respond(request: ChatRequest) -> str:
        return clean[request.context["image_id"]][1]

    items = [ShrItem(i, d) for i, (d, _) in clean.items()]
    runs = {c: judge_run(items, LocalChatClient(respond, name="clean"), protocol=ShrProtocol(counting=c))
            for c in ("kit", "original")}
    assert run_metrics(runs["kit"], "kit") == run_metrics(runs["original"], "original")
