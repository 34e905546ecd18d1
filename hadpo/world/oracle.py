"""The shapes world's offline judge backend (``oracle`` in the ``hadpo.judges`` entry point group).

It answers every judged protocol of the kit from the world's annotations, in the text format an LLM judge is
asked for, so the same parsers, re-asks and metrics run on it: SHR sentence labels (:mod:`hadpo.world.shr_oracle`),
the mining steps (:mod:`hadpo.world.mining_oracle`) and MMHal-Bench ratings (:mod:`hadpo.world.mmhal_oracle`).
"""

from __future__ import annotations

from typing import Any

from hadpo.errors import ParamsError
from hadpo.judge.local import LocalChatClient


def backend(spec: Any, context: Any) -> LocalChatClient:
    """The oracle for ``context.task`` on the world under ``context.data_root`` (the spec's server keys are unused)."""
    if context.task == "shr":
        from hadpo.world.shr_oracle import world_oracle

        return world_oracle(context.data_root)
    if context.task == "mining":
        from hadpo.world.mining_oracle import mining_oracle

        return mining_oracle(context.data_root)
    if context.task == "mmhal":
        from hadpo.world.mmhal_oracle import world_oracle as mmhal_oracle

        return mmhal_oracle(context.data_root)
    raise ParamsError(f"judge 'oracle' knows the shapes world's SHR, mining and MMHal-Bench protocols, not "
                      f"{context.task!r}")
