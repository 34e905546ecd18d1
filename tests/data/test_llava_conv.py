"""LLaVA conversation files: alternating human/gpt turns with the image placeholder first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.llava_conv import LlavaConversation, Turn, read_llava_conversations
from hadpo.errors import DataError


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _conv(conv_id: object, *turns: tuple[str, str], **extra: object) -> dict:
    return {"id": conv_id, "image": "VG/VG_100K/1.png", "conversations": [{"from": r, "value": v} for r, v in turns],
            **extra}


_QA = (("human", "<image>\nIs there a red circle in the image?"), ("gpt", "Yes, there is a red circle."))


def test_conversations_parse_in_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "llava_instruct.json",
        [
            _conv("b", ("human", "Describe this image.\n<image>"), ("gpt", "There is a red circle."),
                  kind="description"),
            _conv(7, *_QA, ("human", "And a square?"), ("gpt", "No.")),
        ],
    )
    convs = read_llava_conversations(path)
    assert convs[0] == LlavaConversation(
        "b", "VG/VG_100K/1.png",
        (Turn("human", "Describe this image.\n<image>"), Turn("gpt", "There is a red circle.")), "description",
    )
    assert convs[1].id == "7" and convs[1].kind is None
    assert convs[1].pairs() == [(_QA[0][1], _QA[1][1]), ("And a square?", "No.")]


@pytest.mark.parametrize(
    ("conv", "field", "reason"),
    [
        (_conv("a", *_QA), "id", "duplicate conversation id 'a'"),
        (_conv("c", ("human", "Is there a cat?"), ("gpt", "No.")), "conversations[0].value", "must contain '<image>'"),
        (_conv("c", ("gpt", "<image>"), ("human", "x")), "conversations[0].from", "expected a 'human' turn"),
        (_conv("c", *_QA, ("human", "more?")), "conversations[2].from", "last turn must be a 'gpt'"),
        (_conv("c", ("human", "<image>\nq"), ("assistant", "a")), "conversations[1].from", "one of 'human', 'gpt'"),
        (_conv("c", ("human", "<image>\nq"), ("gpt", "")), "conversations[1].value", "non-empty string"),
        (_conv("c"), "conversations", "non-empty list"),
        ({**_conv("c", *_QA), "image": None}, "image", "expected a string"),
        ({**_conv("c", *_QA), "kind": 3}, "kind", "expected a string"),
        ({**_conv("c", *_QA), "conversations": ["hi"]}, "conversations[0]", "expected a JSON object"),
        ({k: v for k, v in _conv("c", *_QA).items() if k != "id"}, "id", "missing required field"),
    ],
)
def test_conversation_errors(tmp_path: Path, conv: dict, field: str, reason: str) -> None:
    path = _write(tmp_path / "llava_instruct.json", [_conv("a", *_QA), conv])
    with pytest.raises(DataError, match=reason) as err:
        read_llava_conversations(path)
    assert (err.value.record, err.value.field) == (1, field)
    assert f"llava_instruct.json, record 1, field '{field}'" in str(err.value)


def test_conversations_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a JSON list of conversation records, got dict"):
        read_llava_conversations(_write(tmp_path / "llava_instruct.json", {"a": _conv("a", *_QA)}))


@pytest.mark.parametrize("content", ["[]", "", " \n"])
def test_no_conversation_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "llava_instruct.json"
    path.write_text(content)
    with pytest.raises(DataError, match="no records") as err:
        read_llava_conversations(path)
    assert err.value.file == str(path)
