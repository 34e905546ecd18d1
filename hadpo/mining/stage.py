"""Stage 01, preference data: read the released HA-DPO data, or mine new pairs from a model's own outputs.

- ``source: released`` → :func:`hadpo.mining.released.prepare_released`: validate ``desc_data.json`` /
  ``pope_data.json``, drop records on missing or evaluation images, write the training files and counts.
- ``source: mine`` → :func:`hadpo.mining.mine.mine`: select annotated VG images (never evaluation images) → the
  model describes them → a judge marks hallucinated sentences and corrects them → style-consistent rewrites of
  both sides → existence questions answered by the model → ``desc_data.json`` and ``pope_data.json`` in the
  released schema.

The judge is any registered backend (:func:`hadpo.judge.build_judge`): an OpenAI-compatible server, or, on the
shapes world, its offline oracle. Heavy modules are imported on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hadpo.mining.config import DataConfig
from hadpo.runlock import run_lock

if TYPE_CHECKING:
    import pandas as pd

NOTEBOOK = "01_data"
Config = DataConfig

__all__ = ["NOTEBOOK", "Config", "preview_pairs", "run", "stats_table", "training_files"]


def run(cfg: DataConfig) -> dict[str, Any]:
    """Run the config's source (released or mine); returns the stats also written to ``<run_dir>/data_stats.json``.

    The run folder is locked for the whole call: a second run on it raises :class:`hadpo.errors.RunFolderBusy`.
    """
    with run_lock(cfg.run_dir, what="mining"):  # one writer per run folder
        if cfg.source == "released":
            from hadpo.mining.released import prepare_released

            return prepare_released(cfg)
        from hadpo.mining.mine import mine

        return mine(cfg)


def training_files(cfg: DataConfig) -> tuple[Path, Path]:
    """``(desc_data.json, pope_data.json)`` that training should read after :func:`run`."""
    from hadpo.data.layout import DataLayout
    from hadpo.mining.released import DESC_FILE, POPE_FILE

    if cfg.source == "released":
        return Path(cfg.run_dir) / DESC_FILE, Path(cfg.run_dir) / POPE_FILE
    return DataLayout(cfg.data_root).hadpo_data(cfg.name)


def preview_pairs(cfg: DataConfig, n: int = 3, *, sampling: str = "offline", seed: int = 42) -> pd.DataFrame:
    """The first ``n`` training pairs of each kind, as the trainer will build them, in a table."""
    import pandas as pd

    from hadpo.data.hadpo_files import read_desc_data, read_pope_data
    from hadpo.data.pairs import build_hadpo_pairs

    desc_path, pope_path = training_files(cfg)
    pairs = build_hadpo_pairs(read_desc_data(desc_path), read_pope_data(pope_path), sampling, seed)  # type: ignore[arg-type]
    rows = []
    for kind in ("desc", "qa"):
        rows += [{"kind": p.kind, "image_id": p.image_id, "question": p.question, "chosen": p.chosen,
                  "rejected": p.rejected} for p in [p for p in pairs if p.kind == kind][:n]]
    return pd.DataFrame(rows, columns=["kind", "image_id", "question", "chosen", "rejected"])


def stats_table(stats: dict[str, Any]) -> pd.DataFrame:
    """The counts of :func:`run` as a table (see :func:`hadpo.mining.stats.stats_table`)."""
    from hadpo.mining.stats import stats_table as table

    return table(stats)
