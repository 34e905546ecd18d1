"""Reader for LLaVA-style conversation files (``llava/llava_instruct.json``).

A list of ``{"id", "image", "conversations": [{"from": "human"|"gpt", "value": str}, ...], "kind"?}``. Turns
alternate human → gpt and end with a gpt turn (there is nothing to learn from a trailing question), and the first
human turn holds the ``<image>`` placeholder where the image features are spliced in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import Fields, UniqueIds, list_records
from hadpo.io import read_json

IMAGE_PLACEHOLDER = "<image>"
ROLES = ("human", "gpt")


@dataclass(frozen=True)
class Turn:
    """One conversation turn."""

    role: str
    value: str


@dataclass(frozen=True)
class LlavaConversation:
    """One image-grounded conversation; ``kind`` optionally tags it (e.g. ``description`` or ``qa``)."""

    id: str
    image: str
    turns: tuple[Turn, ...]
    kind: str | None

    def pairs(self) -> list[tuple[str, str]]:
        """The (human, gpt) exchanges in order."""
        return [(self.turns[i].value, self.turns[i + 1].value) for i in range(0, len(self.turns), 2)]


def read_llava_conversations(path: str | Path) -> list[LlavaConversation]:
    """Read a conversation file in file order; ids must be unique."""
    path = Path(path)
    ids = UniqueIds("conversation id")
    out = []
    for fields in list_records(path, read_json(path), "conversation records"):
        conv_id = fields.ident("id")
        ids.add(conv_id, fields, "id")
        out.append(
            LlavaConversation(
                id=conv_id,
                image=fields.text("image", nonempty=True),
                turns=_turns(fields),
                kind=fields.opt_text("kind", nonempty=True),
            )
        )
    return out


def _turns(fields: Fields) -> tuple[Turn, ...]:
    turns = []
    for i, turn in enumerate(fields.objects("conversations", nonempty=True)):
        role = turn.choice("from", ROLES)
        expected = ROLES[i % 2]
        if role != expected:
            raise turn.error(f"expected a {expected!r} turn (turns alternate human, gpt), got {role!r}", "from")
        turns.append(Turn(role=role, value=turn.text("value", nonempty=True)))
    if turns[-1].role != "gpt":
        raise fields.error("the last turn must be a 'gpt' answer", f"conversations[{len(turns) - 1}].from")
    if IMAGE_PLACEHOLDER not in turns[0].value:
        raise fields.error(f"the first human turn must contain {IMAGE_PLACEHOLDER!r}", "conversations[0].value")
    return tuple(turns)
