"""Side-by-side descriptions of the same images by the base and the HA-DPO model, with the judge's verdicts.

Input: the two SHR ``judgement.json`` files (``{"run1": {image_id: {model_response, judgement: [{model_response:
sentence, judgement, classification}], status?}}}``). Each sentence is shown with its verdict: hallucinated
sentences on a red background, correct ones plain, "cannot judge" in grey, sentences without a verdict (image
unjudged or skipped) dotted-underlined. Hovering a sentence shows the judge's line. All text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hadpo.errors import DataError
from hadpo.io import read_json
from hadpo.report.html import HtmlFragment

CSS = """
.hadpo-q table { border-collapse: collapse; width: 100%; }
.hadpo-q th, .hadpo-q td { border: 1px solid #ccc; padding: 0.4em 0.6em; vertical-align: top; text-align: left; }
.hadpo-q th { background: #f3f3f3; }
.hadpo-q .hal { background: #f8c4c4; }
.hadpo-q .cj { background: #e6e6e6; color: #555; }
.hadpo-q .uj { text-decoration: underline dotted #888; }
.hadpo-q .meta { color: #666; font-size: 0.85em; }
.hadpo-q .legend span { padding: 0 0.4em; margin-right: 0.6em; }
"""

#: classification → CSS class ("correct" is plain).
_CLASSES = {"hallucination": "hal", "correct": "", "cannot judge": "cj"}


def read_judgements(path: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Read an SHR ``judgement.json``, checking the shape the report relies on (errors name image and field)."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(path, "expected a JSON object of judge runs ({'run1': {image_id: record}})")
    for run, images in data.items():
        if not isinstance(images, dict):
            raise DataError(path, f"expected an object of image records, got {type(images).__name__}", field=run)
        for image_id, record in images.items():
            if not isinstance(record, dict):
                raise DataError(path, f"{run}: expected an object", record=image_id)
            if not isinstance(record.get("judgement"), list):
                raise DataError(path, f"{run}: expected a list of sentence judgements", record=image_id,
                                field="judgement")
            for i, entry in enumerate(record["judgement"]):
                if not isinstance(entry, dict) or not isinstance(entry.get("model_response"), str):
                    raise DataError(path, f"{run}: sentence {i} has no text", record=image_id,
                                    field="judgement.model_response")
    return data


def _sentence_html(entry: Mapping[str, Any]) -> str:
    text = html.escape(entry["model_response"])
    label = entry.get("classification")
    verdict = entry.get("judgement")
    tip = html.escape(str(verdict) if verdict else (label or "not judged"), quote=True)
    if label is None or label not in _CLASSES:
        return f'<span class="uj" title="{tip}">{text}</span>'
    css = _CLASSES[label]
    return f'<span class="{css}" title="{tip}">{text}</span>' if css else f'<span title="{tip}">{text}</span>'


def _cell(record: Mapping[str, Any] | None) -> tuple[str, str]:
    """(HTML of the description, summary line) for one model's record of an image."""
    if record is None:
        return '<span class="meta">not described</span>', ""
    entries = record.get("judgement") or []
    if not entries:
        text = str(record.get("model_response") or "").strip()
        body = html.escape(text) if text else '<span class="meta">(empty description)</span>'
        return body, f"{record.get('status', 'judged')}, 0 sentences"
    labels = [e.get("classification") for e in entries]
    status = record.get("status") or ("judged" if all(x in _CLASSES for x in labels) else "unjudged")
    hal = sum(1 for x in labels if x == "hallucination")
    meta = f"{hal} of {len(entries)} sentences hallucinated" if status == "judged" else f"{status}: no verdicts"
    return " ".join(_sentence_html(e) for e in entries), meta


def select_images(
    base: Mapping[str, Any],
    adapted: Mapping[str, Any],
    *,
    limit: int = 5,
    image_ids: Sequence[str] | None = None,
    base_file: str | Path = "<base judgement>",
    adapted_file: str | Path = "<adapted judgement>",
) -> list[str]:
    """Image ids to show: ``image_ids`` (each must be in both runs), else the first ``limit`` common ids."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if image_ids is not None:
        for image_id in image_ids:
            for run, file in ((base, base_file), (adapted, adapted_file)):
                if image_id not in run:
                    raise DataError(file, "image not described in this file", record=image_id)
        return list(image_ids)[:limit]
    return [i for i in base if i in adapted][:limit]


def side_by_side(
    base: Mapping[str, Mapping[str, Any]],
    adapted: Mapping[str, Mapping[str, Any]],
    *,
    run: str = "run1",
    limit: int = 5,
    image_ids: Sequence[str] | None = None,
    labels: tuple[str, str] = ("base", "HA-DPO"),
    base_file: str | Path = "<base judgement>",
    adapted_file: str | Path = "<adapted judgement>",
) -> HtmlFragment:
    """An HTML table: one row per image, the base description next to the HA-DPO one, verdicts highlighted.

    ``base`` / ``adapted`` are ``judgement.json`` contents; ``run`` picks the judge run; ``limit`` caps the
    number of images (the first common ids, or the given ``image_ids``).
    """
    for data, file in ((base, base_file), (adapted, adapted_file)):
        if run not in data:
            raise DataError(file, f"no judge run {run!r} (has {', '.join(map(str, data)) or 'none'})", field=run)
    ids = select_images(base[run], adapted[run], limit=limit, image_ids=image_ids, base_file=base_file,
                        adapted_file=adapted_file)
    legend = (
        '<p class="legend meta">'
        '<span class="hal">hallucination</span><span>correct</span><span class="cj">cannot judge</span>'
        '<span class="uj">no verdict</span></p>'
    )
    if not ids:
        body = legend + '<p class="meta">No image was described by both models.</p>'
        return HtmlFragment(f'<div class="hadpo-q">{body}</div>', css=CSS)
    rows = []
    for image_id in ids:
        b_html, b_meta = _cell(base[run].get(image_id))
        a_html, a_meta = _cell(adapted[run].get(image_id))
        rows.append(
            f"<tr><td>{html.escape(str(image_id))}</td>"
            f'<td>{b_html}<div class="meta">{html.escape(b_meta)}</div></td>'
            f'<td>{a_html}<div class="meta">{html.escape(a_meta)}</div></td></tr>'
        )
    header = (
        f"<tr><th>Image</th><th>{html.escape(labels[0])}</th><th>{html.escape(labels[1])}</th></tr>"
    )
    body = f"{legend}<table><thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>"
    return HtmlFragment(f'<div class="hadpo-q">{body}</div>', css=CSS)


def side_by_side_files(
    base_file: str | Path,
    adapted_file: str | Path,
    *,
    run: str = "run1",
    limit: int = 5,
    image_ids: Sequence[str] | None = None,
    labels: tuple[str, str] = ("base", "HA-DPO"),
) -> HtmlFragment:
    """:func:`side_by_side` read from two ``judgement.json`` files."""
    return side_by_side(
        read_judgements(base_file), read_judgements(adapted_file), run=run, limit=limit, image_ids=image_ids,
        labels=labels, base_file=base_file, adapted_file=adapted_file,
    )
