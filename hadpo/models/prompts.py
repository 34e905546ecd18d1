"""LLaVA-1.5 conversation strings, built by hand (the llava-hf chat template omits the system sentence).

The original trains with the Vicuna-v1 system sentence ("a curious user") and evaluates POPE and SHR with
the llava_v1 one ("a curious human"); both render as::

    <system> USER: <image>\\n<question> ASSISTANT: <answer></s>

with ``" "`` between turns and ``"</s>"`` after the answer. A generation prompt ends at ``ASSISTANT:``;
the answer is appended after a single space, so the prompt is always a token prefix of prompt + answer
(the boundary falls on ``:``, never inside a word).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

IMAGE_PLACEHOLDER = "<image>"

VICUNA_V1_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

#: LLaVA's short-answer suffix for benchmark questions (HA-DPO's POPE protocol does NOT append it).
SHORT_ANSWER_SUFFIX = "Answer the question using a single word or phrase."

#: The detailed-description instruction used by SHR and by mining.
DESCRIBE_INSTRUCTION = "Describe this image in detail."

#: The four description instructions HA-DPO samples from when it builds description pairs (in its order).
DESCRIPTION_INSTRUCTIONS: tuple[str, ...] = (
    "Describe this image in detail.",
    "Take a look at this image and describe what you notice.",
    "Please provide a detailed description of the picture.",
    "Could you describe the contents of this image for me?",
)

TemplateName = Literal["vicuna_v1", "llava_v1", "plain"]


@dataclass(frozen=True)
class Conversation:
    """A single-turn image conversation template."""

    name: str
    system: str | None

    def prompt(self, question: str) -> str:
        """The generation prompt: system, user turn with the image placeholder, ending at ``ASSISTANT:``."""
        user = f"USER: {IMAGE_PLACEHOLDER}\n{question} ASSISTANT:"
        return f"{self.system} {user}" if self.system else user

    def answer_suffix(self, answer: str, eos: str, *, strip: bool = False) -> str:
        """What follows the prompt in a training sequence: a space, the answer, then the EOS string.

        The answer is taken as written, leading and trailing spaces and newlines included, as the original's
        ``"ASSISTANT: " + message + "</s>"`` does; ``strip`` removes them first.
        """
        return f" {answer.strip() if strip else answer}{eos}"

    def full(self, question: str, answer: str, eos: str, *, strip: bool = False) -> str:
        """Prompt plus supervised answer, as one training string."""
        return self.prompt(question) + self.answer_suffix(answer, eos, strip=strip)


TEMPLATES: dict[str, Conversation] = {
    "vicuna_v1": Conversation("vicuna_v1", VICUNA_V1_SYSTEM),
    "llava_v1": Conversation("llava_v1", LLAVA_V1_SYSTEM),
    "plain": Conversation("plain", None),
}


def get_template(name: str) -> Conversation:
    """Look up a conversation template by name (``vicuna_v1`` trains, ``llava_v1`` evaluates)."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown conversation template {name!r}; known: {', '.join(TEMPLATES)}") from None


def strip_image_placeholder(question: str) -> str:
    """Remove a leading ``<image>`` line from a question as stored in HA-DPO / LLaVA data."""
    q = question.strip()
    if q.startswith(IMAGE_PLACEHOLDER):
        q = q[len(IMAGE_PLACEHOLDER) :].lstrip("\n").strip()
    return q.replace(IMAGE_PLACEHOLDER, "").strip()
