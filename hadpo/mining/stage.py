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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hadpo.mining.config import DataConfig
from hadpo.rerun import set_aside
from hadpo.runlock import run_lock

if TYPE_CHECKING:
    from hadpo.display import Table
    from hadpo.report.html import HtmlFragment

NOTEBOOK = "01_data"
Config = DataConfig

__all__ = ["NOTEBOOK", "Config", "PairPreview", "pair_previews", "preview_pairs", "run", "stats_table",
           "training_files"]


def run(cfg: DataConfig) -> dict[str, Any]:
    """Run the config's source (released or mine); returns the stats also written to ``<run_dir>/data_stats.json``.

    With ``cfg.rerun.force`` and ``source: mine``, every step is done again: the run folder's earlier output (the judge
    cache kept there too) and the preference files mining wrote under ``<data_root>/hadpo/<name>/`` are first moved
    into a ``replaced-<UTC time>/`` folder in each (:func:`hadpo.rerun.set_aside`); files mining did not write
    (released data) stay, guarded as always. ``source: released`` redoes everything on every run.
    The run folder is locked for the whole call: a second run on it raises :class:`hadpo.errors.RunFolderBusy`.
    """
    with run_lock(cfg.run_dir, what="mining"):  # one writer per run folder
        if cfg.source == "released":
            from hadpo.mining.released import prepare_released

            return prepare_released(cfg)
        from hadpo.mining.mine import MANIFEST_FILE, mine

        if cfg.rerun.force:
            set_aside(cfg.run_dir)
            out = training_files(cfg)[0].parent
            if (out / MANIFEST_FILE).is_file():  # mined here before; without it the files are someone else's
                set_aside(out, [*(p.name for p in training_files(cfg)), MANIFEST_FILE])
        return mine(cfg)


def training_files(cfg: DataConfig) -> tuple[Path, Path]:
    """``(desc_data.json, pope_data.json)`` that training should read after :func:`run`."""
    from hadpo.data.layout import DataLayout
    from hadpo.mining.released import DESC_FILE, POPE_FILE

    if cfg.source == "released":
        return Path(cfg.run_dir) / DESC_FILE, Path(cfg.run_dir) / POPE_FILE
    return DataLayout(cfg.data_root).hadpo_data(cfg.name)


@dataclass(frozen=True)
class PairPreview:
    """One training pair as notebook 01 shows it, whole.

    ``hallucinated`` holds the sentences the judge marked hallucinated in the model's own description of the
    image (mined data; the released data does not say); ``image_path`` is the image file, when found.
    """

    kind: str
    image_id: str
    question: str
    chosen: str
    rejected: str
    hallucinated: tuple[str, ...] = ()
    image_path: Path | None = None


def _hallucinated_sentences(cfg: DataConfig) -> dict[str, tuple[str, ...]]:
    """Image id → the sentences the mining judge labelled ``hallucination`` (empty for released data)."""
    if cfg.source != "mine":
        return {}
    from hadpo.io import read_jsonl_tolerant
    from hadpo.mining.mine import CORRECTIONS_FILE

    out = {}
    for record in read_jsonl_tolerant(Path(cfg.run_dir) / CORRECTIONS_FILE):
        if isinstance(record, dict) and record.get("status") == "ok":
            pairs = zip(record.get("sentences") or [], record.get("labels") or [], strict=False)
            out[str(record["image_id"])] = tuple(str(s) for s, label in pairs if label == "hallucination")
    return out


def _image_paths(cfg: DataConfig, image_ids: set[str]) -> dict[str, Path]:
    """Image id → file, for thumbnails: a mining run's selection, else the data root's VG ``image_data.json``.

    Best effort: an image that cannot be located is left out, and the preview shows a placeholder for it.
    """
    from hadpo.data.layout import DataLayout
    from hadpo.data.vg import read_vg_images
    from hadpo.errors import DataError
    from hadpo.io import read_json

    out: dict[str, Path] = {}
    selection = Path(cfg.run_dir) / "selection.json"
    try:
        if cfg.source == "mine" and selection.is_file():
            data = read_json(selection)
            images = data.get("images", []) if isinstance(data, dict) else []
            out = {str(im["image_id"]): Path(im["path"]) for im in images
                   if isinstance(im, dict) and str(im.get("image_id")) in image_ids and im.get("path")}
        if image_ids - set(out):
            layout = DataLayout(cfg.data_root)
            for image in read_vg_images(layout.image_data):
                if str(image.image_id) in image_ids and str(image.image_id) not in out:
                    out[str(image.image_id)] = image.path(layout)
    except (DataError, OSError, ValueError, KeyError):
        pass  # thumbnails are a courtesy; the pairs are shown whatever happens here
    return out


def pair_previews(cfg: DataConfig, n: int = 3, *, sampling: str = "offline", seed: int = 42) -> list[PairPreview]:
    """The first ``n`` distinct training pairs of each kind (descriptions, then questions), as the trainer builds
    them, with what the judge marked hallucinated and where each image is."""
    from hadpo.data.hadpo_files import read_desc_data, read_pope_data
    from hadpo.data.pairs import build_hadpo_pairs

    desc_path, pope_path = training_files(cfg)
    pairs = build_hadpo_pairs(read_desc_data(desc_path), read_pope_data(pope_path), sampling, seed)  # type: ignore[arg-type]
    # Offline sampling lists each description pair twice (qa + desc * 2); show each distinct pair once.
    distinct = list({(p.kind, p.image_id, p.question, p.chosen, p.rejected): p for p in pairs}.values())
    chosen = [p for kind in ("desc", "qa") for p in [p for p in distinct if p.kind == kind][:n]]
    hallucinated = _hallucinated_sentences(cfg)
    paths = _image_paths(cfg, {p.image_id for p in chosen})
    return [PairPreview(kind=p.kind, image_id=p.image_id, question=p.question, chosen=p.chosen, rejected=p.rejected,
                        hallucinated=hallucinated.get(p.image_id, ()) if p.kind == "desc" else (),
                        image_path=paths.get(p.image_id)) for p in chosen]


def _rejected_html(pair: PairPreview) -> str:
    """The rejected text with the judge's hallucinated sentences highlighted, and a line for any of them that the
    style rewrite changed (so the hallucination stays visible even when it is not there verbatim)."""
    import html

    from hadpo.report.qualitative import highlight_phrases

    body, missing = highlight_phrases(pair.rejected, [(s, "hal", "judge: hallucination") for s in pair.hallucinated])
    meta = []
    if pair.hallucinated:
        meta.append(f"{len(pair.hallucinated)} sentence(s) the judge marked hallucinated")
    if missing:
        quoted = " ".join(f'<span class="hal">{html.escape(s)}</span>' for s in missing)
        meta.append(f"reworded here; in the model's own description: {quoted}")
    lines = "".join(f'<div class="meta">{m}</div>' for m in meta)
    return body + lines


def preview_pairs(cfg: DataConfig, n: int = 3, *, sampling: str = "offline", seed: int = 42) -> HtmlFragment:
    """The first ``n`` training pairs of each kind, whole: the image, the prompt, the chosen and the rejected
    text in full, the judge's hallucinated sentences highlighted in the rejected one (mined data)."""
    import html

    from hadpo.report.html import THUMBNAIL_PX, HtmlFragment, image_html, thumbnail_uri
    from hadpo.report.qualitative import CSS

    pairs = pair_previews(cfg, n, sampling=sampling, seed=seed)
    if cfg.source == "mine":
        legend = ('<p class="legend meta"><span class="hal">hallucinated</span> a sentence the judge marked '
                  "hallucinated in the model's description of the image</p>")
    else:
        legend = '<p class="meta">The released data does not say which sentences are hallucinated.</p>'
    kinds = {"desc": "description", "qa": "question"}
    rows = []
    for pair in pairs:
        uri = thumbnail_uri(pair.image_path) if pair.image_path is not None else None
        rows.append(
            f'<tr><td>{image_html(uri, alt=f"image {pair.image_id}")}'
            f'<div class="meta">image {html.escape(pair.image_id)}</div></td>'
            f'<td><b>{kinds.get(pair.kind, pair.kind)}</b><div class="meta">{html.escape(pair.question)}</div></td>'
            f"<td>{html.escape(pair.chosen)}</td><td>{_rejected_html(pair)}</td></tr>"
        )
    caption = (f"<p class=\"meta\">The first {n} distinct pairs of each kind as notebook 02 samples them "
               f"(sampling: {html.escape(sampling)}, seed {seed}).</p>")
    columns = f'<colgroup><col style="width:{THUMBNAIL_PX + 24}px"><col style="width:16%"><col><col></colgroup>'
    header = "<tr><th>Image</th><th>Pair</th><th>Chosen</th><th>Rejected</th></tr>"
    table = f"<table>{columns}<thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>" if rows else (
        '<p class="meta">No training pairs.</p>')
    return HtmlFragment(f'<div class="hadpo-q">{caption}{legend}{table}</div>', css=CSS)


def stats_table(stats: dict[str, Any]) -> Table:
    """Every count of :func:`run` as a table, all rows shown, rates in % (:func:`hadpo.mining.stats.stats_table`)."""
    from hadpo.mining.stats import stats_table as table

    return table(stats)
