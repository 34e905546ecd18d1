"""Side-by-side descriptions of the same images by the base and the HA-DPO model, with the judge's verdicts.

Input: the two SHR ``judgement.json`` files (``{"run1": {image_id: {model_response, judgement: [{model_response:
sentence, judgement, classification}], status?}}}``). Each row shows the image itself (a thumbnail embedded as a
``data:`` URI, so the page stays self-contained) and both descriptions, left-aligned, every sentence with its
verdict: hallucinated sentences on a red background, correct ones plain, "cannot judge" in grey, sentences without
a verdict (image unjudged or skipped) dotted-underlined. Hovering a sentence shows the judge's line. All text is
escaped.

The images are found under the data root the SHR run recorded (``metrics.json`` → ``protocol.data.data_root``);
an image that cannot be found or decoded shows a placeholder, never an error.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hadpo.errors import DataError
from hadpo.io import read_json
from hadpo.report.html import IMAGE_CSS, THUMBNAIL_PX, HtmlFragment, image_html, thumbnail_uri

# The notebook's HTML export right-aligns every table cell with a more specific selector
# (":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td"); prose must read from the left, hence !important.
CSS = IMAGE_CSS + """
.hadpo-q table { border-collapse: collapse; width: 100%; table-layout: fixed; margin: 0.5em 0; }
.hadpo-q th, .hadpo-q td { border: 1px solid #ccc !important; padding: 0.4em 0.6em !important;
  vertical-align: top !important; text-align: left !important; line-height: 1.45; }
.hadpo-q th { background: #f3f3f3; }
.hadpo-q tbody tr:nth-child(even), .hadpo-q tbody tr:hover { background: inherit; }
.hadpo-q .hal { background: #f8c4c4; }
.hadpo-q .cj { background: #e6e6e6; color: #555; }
.hadpo-q .uj { text-decoration: underline dotted #888; }
.hadpo-q .meta { color: #666; font-size: 0.85em; margin-top: 0.3em; }
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


def highlight_phrases(text: str, marks: Sequence[tuple[str, str, str]]) -> tuple[str, list[str]]:
    """``text`` as escaped HTML with every occurrence of each ``(phrase, css_class, tooltip)`` wrapped in a
    ``<span class=css_class title=tooltip>``; also returns the phrases that do not occur in ``text``.

    Longer phrases are placed first and occurrences never overlap, so a sentence contained in another is not
    marked twice. Used where the data names the hallucinated sentences of a text that was not split by the
    report itself (a mined pair's rejected description).
    """
    spans: list[tuple[int, int, str, str]] = []
    missing = []
    for phrase, css, tip in sorted(marks, key=lambda m: -len(m[0])):
        found, start = False, 0
        while phrase and (i := text.find(phrase, start)) >= 0:
            start = i + len(phrase)
            if all(start <= a or i >= b for a, b, _, _ in spans):
                spans.append((i, start, css, tip))
                found = True
        if not found:
            missing.append(phrase)
    out, pos = [], 0
    for a, b, css, tip in sorted(spans):
        out.append(html.escape(text[pos:a]))
        out.append(f'<span class="{html.escape(css, quote=True)}" title="{html.escape(tip, quote=True)}">'
                   f"{html.escape(text[a:b])}</span>")
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out), missing


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
    words = sum(len(str(e["model_response"]).split()) for e in entries)
    meta = (f"{hal} of {len(entries)} sentences hallucinated · {words} words" if status == "judged"
            else f"{status}: no verdicts · {len(entries)} sentences, {words} words")
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


def shr_image_paths(data_root: str | Path | None, image_ids: Sequence[str]) -> dict[str, Path]:
    """The image file of each of ``image_ids`` among the SHR images of ``data_root`` (``shr/val_images_final.json``,
    and ``VG/image_data.json`` for entries that do not embed their image record).

    Best effort, for thumbnails: an unreadable data root, or an id it does not list, is simply absent from the
    result (the report then shows a placeholder; the SHR numbers do not depend on it).
    """
    if data_root is None or not image_ids:
        return {}
    from hadpo.data.layout import DataLayout
    from hadpo.data.shr_files import read_shr_images
    from hadpo.data.vg import read_vg_images, vg_image_index

    layout = DataLayout(data_root)
    wanted = {str(i) for i in image_ids}
    try:
        entries = [e for e in read_shr_images(layout.shr_val_images) if str(e.image_id) in wanted]
        index = None
        if any(e.image is None for e in entries):
            index = vg_image_index(read_vg_images(layout.image_data))
        out = {}
        for entry in entries:
            image = entry.image or (index or {}).get(entry.image_id)
            if image is not None:
                out[str(entry.image_id)] = image.path(layout)
        return out
    except (DataError, OSError, ValueError):
        return {}


def recorded_data_root(metrics: Mapping[str, Any]) -> str | None:
    """The data root an SHR ``metrics.json`` says its images came from (``protocol.data.data_root``), if any."""
    protocol = metrics.get("protocol")
    data = protocol.get("data") if isinstance(protocol, Mapping) else None
    root = data.get("data_root") if isinstance(data, Mapping) else None
    return root if isinstance(root, str) and root else None


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
    images: Mapping[str, str | Path] | None = None,
    thumbnail_px: int = THUMBNAIL_PX,
) -> HtmlFragment:
    """An HTML table: one row per image, its thumbnail, then the base description next to the HA-DPO one, with
    the judge's verdicts highlighted.

    ``base`` / ``adapted`` are ``judgement.json`` contents; ``run`` picks the judge run; ``limit`` caps the
    number of images (the first common ids, or the given ``image_ids``); ``images`` maps an image id to its file
    (embedded as a ``thumbnail_px`` thumbnail; an id without a file, or ``images=None``, shows a placeholder).
    """
    for data, file in ((base, base_file), (adapted, adapted_file)):
        if run not in data:
            raise DataError(file, f"no judge run {run!r} (has {', '.join(map(str, data)) or 'none'})", field=run)
    ids = select_images(base[run], adapted[run], limit=limit, image_ids=image_ids, base_file=base_file,
                        adapted_file=adapted_file)
    legend = (
        '<p class="legend meta">'
        '<span class="hal">hallucination</span><span>correct</span><span class="cj">cannot judge</span>'
        '<span class="uj">no verdict</span> (hover a sentence for the judge\'s reason)</p>'
    )
    if not ids:
        body = legend + '<p class="meta">No image was described by both models.</p>'
        return HtmlFragment(f'<div class="hadpo-q">{body}</div>', css=CSS)
    rows = []
    for image_id in ids:
        b_html, b_meta = _cell(base[run].get(image_id))
        a_html, a_meta = _cell(adapted[run].get(image_id))
        path = (images or {}).get(image_id)
        uri = thumbnail_uri(path, size=thumbnail_px) if path is not None else None
        picture = image_html(uri, alt=f"image {image_id}", size=thumbnail_px)
        rows.append(
            f'<tr><td>{picture}<div class="meta">image {html.escape(str(image_id))}</div></td>'
            f'<td>{b_html}<div class="meta">{html.escape(b_meta)}</div></td>'
            f'<td>{a_html}<div class="meta">{html.escape(a_meta)}</div></td></tr>'
        )
    columns = f'<colgroup><col style="width:{thumbnail_px + 24}px"><col><col></colgroup>'
    header = f"<tr><th>Image</th><th>{html.escape(labels[0])}</th><th>{html.escape(labels[1])}</th></tr>"
    body = f"{legend}<table>{columns}<thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>"
    return HtmlFragment(f'<div class="hadpo-q">{body}</div>', css=CSS)


def side_by_side_files(
    base_file: str | Path,
    adapted_file: str | Path,
    *,
    run: str = "run1",
    limit: int = 5,
    image_ids: Sequence[str] | None = None,
    labels: tuple[str, str] = ("base", "HA-DPO"),
    data_root: str | Path | None = None,
) -> HtmlFragment:
    """:func:`side_by_side` read from two ``judgement.json`` files, with thumbnails from ``data_root``'s SHR
    images when given."""
    base, adapted = read_judgements(base_file), read_judgements(adapted_file)
    ids = list(base.get(run, {})) if image_ids is None else list(image_ids)
    return side_by_side(
        base, adapted, run=run, limit=limit, image_ids=image_ids, labels=labels, base_file=base_file,
        adapted_file=adapted_file, images=shr_image_paths(data_root, ids),
    )
