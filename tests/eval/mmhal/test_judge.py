"""Judging MMHal-Bench answers: one prompt per question, unreadable replies asked again up to judge_attempts, every
question accounted for (judged, or unjudged with its reason), the counts worked by hand."""

from __future__ import annotations

from collections import defaultdict

import pytest

from hadpo.data.mmhal_files import MmhalItem
from hadpo.eval.mmhal.judge import MmhalProtocol, judge_answers, judge_jobs, judge_report
from hadpo.judge.base import ChatRequest
from hadpo.judge.local import LocalChatClient


def _item(index: int, question: str) -> MmhalItem:
    return MmhalItem(index, "counting", "animal", f"img{index}", f"https://example.invalid/{index}.jpg",
                     ("Dog",), question, "One dog.", None)


ITEMS = [_item(0, "Q0"), _item(1, "Q1"), _item(2, "Q2"), _item(3, "Q3")]
ANSWERS = {0: "One dog.", 1: "Two dogs.", 2: "A cat.", 3: "Nothing."}
#: Each question's replies, attempt by attempt: Q0 rated at once, Q1 after one unreadable reply, Q2 never readable;
#: Q3's responder fails (no reply at all).
SCRIPT = {"Q0": ["Right.\nRating: 5"], "Q1": ["Hmm.", "Wrong count.\nRating: 1"],
          "Q2": ["I cannot rate this."] * 3}


@pytest.fixture
def client() -> LocalChatClient:
    asked: defaultdict[str, int] = defaultdict(int)

    def respond(request: ChatRequest) -> str:
        question = request.context["question"]
        if question == "Q3":
            raise RuntimeError("judge fell over")
        reply = SCRIPT[question][asked[question]]
        asked[question] += 1
        return reply

    return LocalChatClient(respond, name="scripted")


def test_each_question_is_one_prompt_with_its_context():
    jobs = judge_jobs(ITEMS[:1], ANSWERS, MmhalProtocol())
    assert [j.key for j in jobs] == ["0"]
    assert "Dog" in jobs[0].prompt and "Q0" in jobs[0].prompt and "One dog." in jobs[0].prompt
    assert jobs[0].context["question_type"] == "counting" and jobs[0].context["answer"] == "One dog."


def test_unreadable_replies_are_asked_again_and_every_question_is_accounted_for(client):
    records = judge_answers(ITEMS, ANSWERS, client, MmhalProtocol(max_attempts=3))
    got = {k: (r["status"], r["rating"], r["attempts"], r["unusable"]) for k, r in records.items()}
    assert got == {"0": ("judged", 5, 1, 0), "1": ("judged", 1, 2, 1), "2": ("unjudged", None, 3, 3),
                   "3": ("unjudged", None, 1, 0)}
    assert records["2"]["reason"] == "unusable reply" and "after 3 attempts" in records["2"]["error"]
    assert records["3"]["reason"] == "no reply" and "judge fell over" in records["3"]["error"]
    report = judge_report(records, client.faults())
    # re-asks: Q1 once, Q2 twice → 3; unreadable replies: Q1 1 + Q2 3 → 4;
    # requests: Q0 1 + Q1 2 + Q2 3 + Q3 1 → 7
    assert (report["reasks"], report["unusable_replies"], report["unjudged_questions"]) == (3, 4, 2)
    assert report["unjudged_reasons"] == {"no reply": 1, "unusable reply": 1}
    assert [u["question"] for u in report["first_unjudged"]] == ["2", "3"]
    assert report["calls"]["requests"] == 7


def test_judge_attempts_below_one_is_refused():
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        MmhalProtocol(max_attempts=0)
