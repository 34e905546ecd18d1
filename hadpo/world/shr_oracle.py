"""An offline SHR judge for the shapes world: labels each sentence from the image's object annotations.

It replies in exactly the text format an LLM judge is asked for (``Judgement:`` then ``N. label: reason``), so
the same parser, retry logic and metrics run on both. A sentence is

* ``hallucination`` when it names an object the image does not have, or places it in a column where it is not;
* ``correct`` when the object is in the image (in that column, when the sentence names one);
* ``cannot judge`` when it names no object (or denies one: "There is no red circle").

Columns are the thirds of the image width (0 = left, 1 = middle, 2 = right), taken from each object's box
centre in the VG-format ``objects.json`` the world writes; sentences are read with the world's own grammar
(:func:`hadpo.world.text.parse_sentence`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path

from hadpo.eval.shr.prompt import format_judgement
from hadpo.judge.base import ChatRequest
from hadpo.judge.local import LocalChatClient

#: What a sentence claims: ``(object name, column or None)``, or None when it claims no object.
SentenceParser = Callable[[str], "tuple[str, int | None] | None"]
#: Objects of one image as ``(name, column)``.
ImageObjects = Collection[tuple[str, int]]

ORACLE_NAME = "shapes-oracle"
_COLUMN_WORDS = ("on the left", "in the middle", "on the right")


def _a(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _where(column: int) -> str:
    return _COLUMN_WORDS[column] if 0 <= column < len(_COLUMN_WORDS) else f"in column {column}"


def oracle_labels(sentences: Iterable[str], objects: ImageObjects, parse: SentenceParser) -> list[tuple[str, str]]:
    """``(label, reason)`` for each sentence given the image's ``objects`` (see the module docstring)."""
    columns_of: dict[str, set[int]] = {}
    for name, column in objects:
        columns_of.setdefault(name, set()).add(column)
    out = []
    for sentence in sentences:
        claim = parse(sentence)
        if claim is None:
            out.append(("cannot judge", "the sentence names no object of the image's categories"))
            continue
        name, column = claim
        present = columns_of.get(name)
        if not present:
            out.append(("hallucination", f"there is no {name} in the image"))
        elif column is None:
            out.append(("correct", f"there is {_a(name)} in the image"))
        elif column in present:
            out.append(("correct", f"{_a(name)} is {_where(column)}"))
        else:
            actual = " and ".join(_where(c) for c in sorted(present))
            out.append(("hallucination", f"the {name} is {actual}, not {_where(column)}"))
    return out


def oracle_responder(
    objects_by_image: Mapping[str, ImageObjects], parse: SentenceParser
) -> Callable[[ChatRequest], str]:
    """A responder for :class:`~hadpo.judge.local.LocalChatClient` reading ``context`` of SHR requests.

    The request's ``context`` must hold ``image_id`` and ``sentences`` (the SHR judge sets both).
    """

    def respond(request: ChatRequest) -> str:
        image_id = str(request.context["image_id"])
        if image_id not in objects_by_image:
            raise KeyError(f"no annotations for image {image_id}")
        sentences = request.context["sentences"]
        return format_judgement(oracle_labels(sentences, objects_by_image[image_id], parse))

    return respond


def oracle_client(objects_by_image: Mapping[str, ImageObjects], parse: SentenceParser) -> LocalChatClient:
    """The annotation oracle as a chat client (``protocol()['model'] == 'shapes-oracle'``)."""
    return LocalChatClient(oracle_responder(objects_by_image, parse), name=ORACLE_NAME,
                           settings={"rule": "object and column from objects.json"})


def column_of(x: float, width: float, image_width: float, columns: int = 3) -> int:
    """The column (0-based, of ``columns`` equal strips) holding a box's horizontal centre."""
    centre = x + width / 2
    return min(max(int(centre * columns // image_width), 0), columns - 1)


def world_objects(data_root: str | Path) -> dict[str, list[tuple[str, int]]]:
    """``{image id: [(name, column)]}`` from a data root's VG ``image_data.json`` and ``objects.json``."""
    from hadpo.data.layout import DataLayout
    from hadpo.data.vg import read_vg_images, read_vg_objects, vg_image_index

    layout = DataLayout(data_root)
    images = vg_image_index(read_vg_images(layout.image_data))
    out: dict[str, list[tuple[str, int]]] = {}
    for image_id, objects in read_vg_objects(layout.objects).items():
        image = images.get(image_id)
        if image is None:
            continue  # objects of an image that is not listed cannot be described either
        out[str(image_id)] = [(o.name, column_of(o.x, o.w, image.width)) for o in objects]
    return out


def world_categories(data_root: str | Path, objects: Mapping[str, ImageObjects]) -> list[str]:
    """Category names from ``world.json`` (so a category no image shows still counts as an object), else the
    names found in the annotations."""
    from hadpo.data.layout import DataLayout
    from hadpo.errors import DataError
    from hadpo.io import read_json

    path = DataLayout(data_root).world_meta
    if path.is_file():
        meta = read_json(path)
        entries = meta.get("categories") if isinstance(meta, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                                    for e in entries):
            raise DataError(path, "expected a list of {'name': ...} objects", field="categories")
        return [e["name"] for e in entries]
    return sorted({name for objs in objects.values() for name, _ in objs})


def world_oracle(data_root: str | Path) -> LocalChatClient:
    """The oracle for the shapes world under ``data_root``, with the world's sentence grammar."""
    from hadpo.world.text import parse_sentence

    objects = world_objects(data_root)
    categories = world_categories(data_root, objects)
    return oracle_client(objects, lambda sentence: parse_sentence(sentence, categories))
