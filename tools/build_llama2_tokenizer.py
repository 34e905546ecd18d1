#!/usr/bin/env python3
"""Build the LLaMA / Llama-2 tokenizer (32,000 pieces) as Hugging Face files, offline and reproducibly.

The vocabulary and merge list come from the MIT-licensed npm package ``llama-tokenizer-js`` (pinned to
version 1.2.2), which carries LLaMA's SentencePiece-BPE vocabulary and merges inside its JavaScript source:

* ``llama_vocab_base64``: base64 of the UTF-8 pieces joined by line breaks, in id order;
* ``llama_merges_binary``: base64 of little-endian ``uint16`` pairs (left id, right id), one pair per merge,
  in priority order.

From those the script builds, with the ``tokenizers`` library, the same pipeline ``meta-llama/Llama-2-7b-hf``
ships in its ``tokenizer.json``: a BPE model with byte fallback, a normaliser that prepends "▁" and turns
spaces into "▁", no pre-tokeniser, a decoder that undoes both (byte fallback included) and a post-processor
that adds ``<s>``. It writes ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``,
copies the package's LICENSE, writes a README naming the source and its integrity hash, then checks the
result against known Llama-2 token ids and fails if anything differs.

Usage (``npm`` must be on PATH unless ``--tgz`` is given)::

    python tools/build_llama2_tokenizer.py                     # writes tests/fixtures/llama2-tokenizer
    python tools/build_llama2_tokenizer.py --tgz llama-tokenizer-js-1.2.2.tgz --out /tmp/llama2-tokenizer
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

PACKAGE = "llama-tokenizer-js"
VERSION = "1.2.2"
# `npm view llama-tokenizer-js@1.2.2 dist.integrity dist.shasum`: the tarball must hash to these.
INTEGRITY = "sha512-Wmth393dc3odWU3IzARJ3r2oIfWgw9GdJ5Gm+hGhfECNO18UHLRqEFSf511jn4E9KcQGzuuKw4Wl08pHAemLAw=="
SHASUM = "4db5d5f0120e772fb46162ddc7b119f8d2044f4e"
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "llama2-tokenizer"
REGENERATE = "python tools/build_llama2_tokenizer.py --out tests/fixtures/llama2-tokenizer"

JS_FILE = "package/llama-tokenizer.js"
LICENSE_FILE = "package/LICENSE.md"
PACKAGE_JSON = "package/package.json"

SPACE = "▁"  # U+2581, SentencePiece's word-boundary mark
VOCAB_SIZE = 32000
SPECIALS = {"<unk>": 0, "<s>": 1, "</s>": 2}
MODEL_MAX_LENGTH = 4096  # Llama-2's context length

# Expected encodings (BOS included), from Llama-2's tokenizer; the last group is the npm package's own test table.
EXPECTED_IDS: dict[str, list[int]] = {
    "Hello world!": [1, 15043, 3186, 29991],
    "[INST]": [1, 518, 25580, 29962],
    "grabbed": [1, 2646, 1327, 287],
    " grabbed": [1, 29871, 2646, 1327, 287],
    "           grabbed": [1, 9651, 2646, 1327, 287],
    "\n": [1, 29871, 13],
    " \n": [1, 259, 13],
    "\ttabs\t\t\t\tout here": [1, 29871, 12, 21175, 12, 12, 12, 12, 449, 1244],
    "ax\n####\nboo": [1, 4853, 13, 4136, 13, 833, 29877],
    "镇": [1, 29871, 30411],
    "🦙": [1, 29871, 243, 162, 169, 156],
    "🦙Ꙋ": [1, 29871, 243, 162, 169, 156, 237, 156, 141],
}
ROUND_TRIP = (
    "Hello world!",
    "USER: Is there a dog in the image?\nASSISTANT: No, there is no dog.",
    "  two leading spaces, trailing one ",
    "Déjà vu: naïve façade, Straße, Ελληνικά, русский, 日本語のテキスト, 한국어",
    "emoji 🦙🐕‍🦺👍🏽 and rare CJK 𠜎 Ꙋ",
    "tabs\tand\nnew\r\nlines",
)


class BuildError(RuntimeError):
    """The package could not be read or the built tokenizer failed a check."""


@dataclass(frozen=True)
class Source:
    """The npm tarball and what the build needs from it."""

    tgz: Path
    integrity: str  # npm's form: "sha512-" + base64 digest
    shasum: str  # hex sha1
    name: str
    version: str
    js_source: str
    license_text: bytes


def npm_pack(spec: str, dest: Path) -> Path:
    """Download ``spec`` (``name@version``) from the npm registry into ``dest`` with ``npm pack``."""
    cmd = ["npm", "pack", spec, "--json", "--pack-destination", str(dest)]
    try:
        done = subprocess.run(cmd, cwd=dest, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise BuildError("npm is not on PATH; install Node.js or pass --tgz") from exc
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"{' '.join(cmd)} failed:\n{exc.stderr}") from exc
    filename = json.loads(done.stdout)[0]["filename"]
    return dest / Path(filename).name


def tarball_hashes(tgz: Path) -> tuple[str, str]:
    """npm's integrity string (sha512, base64) and shasum (sha1, hex) of ``tgz``."""
    try:
        data = tgz.read_bytes()
    except OSError as exc:
        raise BuildError(f"cannot read {tgz}: {exc}") from exc
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    return integrity, hashlib.sha1(data).hexdigest()


def read_source(tgz: Path, check_integrity: bool) -> Source:
    """Hash ``tgz`` and read the files the build needs out of it (nothing is written to disk)."""
    integrity, shasum = tarball_hashes(tgz)
    if check_integrity and (integrity, shasum) != (INTEGRITY, SHASUM):
        raise BuildError(
            f"{tgz} is not {PACKAGE}@{VERSION}: integrity {integrity} (sha1 {shasum}), "
            f"expected {INTEGRITY} (sha1 {SHASUM})"
        )
    try:
        with tarfile.open(tgz, "r:gz") as tar:

            def member(name: str) -> bytes:
                try:
                    handle = tar.extractfile(name)
                except KeyError as exc:
                    raise BuildError(f"{tgz} has no {name}") from exc
                if handle is None:
                    raise BuildError(f"{tgz}: {name} is not a regular file")
                return handle.read()

            meta = json.loads(member(PACKAGE_JSON))
            js_source = member(JS_FILE).decode("utf-8")
            license_text = member(LICENSE_FILE)
    except (tarfile.TarError, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BuildError(f"cannot read {tgz} as an npm package tarball: {exc}") from exc
    return Source(tgz, integrity, shasum, meta["name"], meta["version"], js_source, license_text)


def js_string_constant(js_source: str, name: str) -> bytes:
    """Base64-decode the string literal assigned to ``const <name>`` in ``js_source``."""
    found = re.search(rf'\bconst\s+{re.escape(name)}\s*=\s*"([A-Za-z0-9+/=]+)"', js_source)
    if found is None:
        raise BuildError(f"{JS_FILE} has no base64 constant {name}")
    try:
        return base64.b64decode(found.group(1), validate=True)
    except binascii.Error as exc:
        raise BuildError(f"{name} is not valid base64: {exc}") from exc


def decode_vocab(js_source: str) -> list[str]:
    """The vocabulary in id order (``llama_vocab_base64``: pieces joined by line breaks)."""
    pieces = js_string_constant(js_source, "llama_vocab_base64").decode("utf-8").split("\n")
    if len(pieces) != VOCAB_SIZE:
        raise BuildError(f"vocabulary has {len(pieces)} pieces, expected {VOCAB_SIZE}")
    if len(set(pieces)) != len(pieces):
        raise BuildError("vocabulary has duplicate pieces")
    for piece, expected_id in SPECIALS.items():
        if pieces[expected_id] != piece:
            raise BuildError(f"id {expected_id} is {pieces[expected_id]!r}, expected {piece!r}")
    return pieces


def decode_merges(js_source: str, vocab: list[str]) -> list[tuple[str, str]]:
    """The merges in priority order (``llama_merges_binary``: little-endian uint16 id pairs)."""
    raw = js_string_constant(js_source, "llama_merges_binary")
    if len(raw) % 4:
        raise BuildError(f"merge data has {len(raw)} bytes, not a multiple of 4")
    known = set(vocab)
    merges: list[tuple[str, str]] = []
    for left, right in struct.iter_unpack("<HH", raw):
        if left >= len(vocab) or right >= len(vocab):
            raise BuildError(f"merge {len(merges)} refers to id {max(left, right)} outside the vocabulary")
        pair = (vocab[left], vocab[right])
        if pair[0] + pair[1] not in known:
            raise BuildError(f"merge {len(merges)} {pair} produces a piece missing from the vocabulary")
        merges.append(pair)
    if len(set(merges)) != len(merges):
        raise BuildError("merge list has duplicates")
    return merges


def build_tokenizer(vocab: list[str], merges: list[tuple[str, str]]) -> Tokenizer:
    """LLaMA's pipeline: SentencePiece-style "▁" normalisation, byte-fallback BPE, ``<s>`` prepended."""
    model = models.BPE(
        vocab={piece: i for i, piece in enumerate(vocab)},
        merges=merges,
        unk_token="<unk>",
        fuse_unk=True,
        byte_fallback=True,
    )
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence(
        [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", SPECIALS["<s>"])]
    )
    tok.add_special_tokens(
        [AddedToken(p, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True) for p in SPECIALS]
    )
    return tok


def special_token_entry(content: str) -> dict[str, Any]:
    """An ``added_tokens_decoder`` / ``special_tokens_map`` entry for a special token."""
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}


def tokenizer_config() -> dict[str, Any]:
    """``tokenizer_config.json`` in the shape of ``llava-hf/llava-1.5-7b-hf``'s, minus ``<image>``/``<pad>``."""
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(i): {**special_token_entry(p), "special": True} for p, i in SPECIALS.items()},
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": False,
        "model_max_length": MODEL_MAX_LENGTH,
        "pad_token": None,
        "padding_side": "left",
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }


def special_tokens_map() -> dict[str, Any]:
    """``special_tokens_map.json`` as Llama-2 ships it (bos, eos, unk)."""
    return {
        "bos_token": special_token_entry("<s>"),
        "eos_token": special_token_entry("</s>"),
        "unk_token": special_token_entry("<unk>"),
    }


def readme(source: Source, n_merges: int) -> str:
    """The output folder's README: provenance, licence and how to regenerate."""
    return f"""# LLaMA / Llama-2 tokenizer (32,000 pieces)

Hugging Face tokenizer files for LLaMA / Llama-2 (`meta-llama/Llama-2-7b-hf`, the language model of
`llava-hf/llava-1.5-7b-hf`), built offline by `tools/build_llama2_tokenizer.py`. No `<image>` or `<pad>`
token is included; ids 0-31999 only.

## Source

- npm package: `{source.name}` version `{source.version}` (tarball `{TARBALL_URL}`)
- tarball integrity (`npm view {source.name}@{source.version} dist.integrity`): `{source.integrity}`
- tarball shasum (sha1): `{source.shasum}`
- package licence: MIT, copyright 2023 belladore.ai; its text is in `LICENSE` (the package's `LICENSE.md`).
- data: the `llama_vocab_base64` ({VOCAB_SIZE} pieces, in id order) and `llama_merges_binary`
  ({n_merges} merges, in priority order) constants of `llama-tokenizer.js`. The package derived them from the
  `tokenizer.json` distributed with the LLaMA model; the vocabulary and merges themselves are Meta's.

## Pipeline

BPE with byte fallback, `<unk>`=0, `<s>`=1, `</s>`=2; normaliser: prepend "▁", replace " " with "▁";
no pre-tokeniser; decoder: "▁" to " ", byte fallback, fuse, strip one leading space; post-processor adds `<s>`.
`tokenizer_config.json`: `LlamaTokenizer`, `add_bos_token` true, `add_eos_token` false, `legacy` false,
`model_max_length` {MODEL_MAX_LENGTH}, `padding_side` left.

Loading: `tokenizers.Tokenizer.from_file` and transformers' `PreTrainedTokenizerFast` use the pipeline above as
written. transformers 5's `LlamaTokenizer` (what `AutoTokenizer` picks from `tokenizer_class`) keeps the vocabulary
and merges but rebuilds the pipeline: no normaliser, a `Metaspace` pre-tokeniser whose prepend scheme is "first"
when `legacy` is false or absent and "always" when true, and which adds no "▁" to text that already starts with
a space (so `" \\n"` gives `[1, 29871, 13]` there, `[1, 259, 13]` here and in Llama-2's SentencePiece model).

## Regenerate

From the repository root (needs `npm` and the `tokenizers` Python package; network access to the npm registry,
or `--tgz llama-tokenizer-js-{VERSION}.tgz` for a tarball already downloaded):

    {REGENERATE}

The script checks the tarball against the integrity above, rebuilds these files byte for byte and verifies
known ids (`"Hello world!"` -> `[1, 15043, 3186, 29991]`, `"[INST]"` -> `[1, 518, 25580, 29962]`, `"▁"` = 29871)
and round trips.
"""


def dump_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON with a trailing newline."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def tokenizer_json_text(tok: Tokenizer) -> str:
    """``tok`` serialised as ``tokenizer.json``: indented, with one vocabulary entry and one merge per line.

    ``Tokenizer.save(pretty=True)`` spreads every merge pair over four lines (3.6 MB here); one line per merge
    keeps the file at about 2 MB and line-diffable.
    """
    data = json.loads(tok.to_str())
    merges = data["model"]["merges"]
    placeholder = "\0merges\0"
    data["model"]["merges"] = placeholder
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if text.count(json.dumps(placeholder)) != 1:
        raise BuildError("could not place the merge list in tokenizer.json")
    rows = ",\n".join("      " + json.dumps(pair, ensure_ascii=False) for pair in merges)
    return text.replace(json.dumps(placeholder), "[\n" + rows + "\n    ]") + "\n"


def write_outputs(out: Path, tok: Tokenizer, source: Source, n_merges: int) -> None:
    """Write the five files of the output folder."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(tokenizer_json_text(tok), encoding="utf-8")
    dump_json(out / "tokenizer_config.json", tokenizer_config())
    dump_json(out / "special_tokens_map.json", special_tokens_map())
    (out / "LICENSE").write_bytes(source.license_text)
    (out / "README.md").write_text(readme(source, n_merges), encoding="utf-8")


def verify(tokenizer_json: Path) -> list[str]:
    """Reload ``tokenizer_json`` and check it against Llama-2; returns the report lines, raises on a mismatch."""
    tok = Tokenizer.from_file(str(tokenizer_json))
    failures: list[str] = []
    lines: list[str] = []

    def expect(label: str, actual: object, expected: object) -> None:
        ok = actual == expected
        lines.append(f"{'ok  ' if ok else 'FAIL'} {label}: {actual!r}" + ("" if ok else f" (expected {expected!r})"))
        if not ok:
            failures.append(label)

    expect("vocab size", tok.get_vocab_size(with_added_tokens=True), VOCAB_SIZE)
    expect("id of '▁'", tok.token_to_id(SPACE), 29871)
    for piece, expected_id in SPECIALS.items():
        expect(f"id of {piece}", tok.token_to_id(piece), expected_id)
    for text, ids in EXPECTED_IDS.items():
        expect(f"encode {text!r}", tok.encode(text).ids, ids)
    for text in ROUND_TRIP:
        ids = tok.encode(text).ids
        expect(f"round trip {text!r} ({len(ids)} ids)", tok.decode(ids, skip_special_tokens=True), text)
    emoji_ids = tok.encode("🦙").ids
    expect("'🦙' uses byte-fallback pieces <0x..>", all(3 <= i <= 258 for i in emoji_ids[2:]), True)
    if failures:
        raise BuildError("verification failed:\n" + "\n".join(lines))
    return lines


def build(out: Path, tgz: Path | None, check_integrity: bool) -> list[str]:
    """Fetch (unless ``tgz`` is given), decode, write and verify; returns the verification report."""
    with tempfile.TemporaryDirectory(prefix="llama2-tokenizer-") as tmp:
        if tgz is None:
            tgz = npm_pack(f"{PACKAGE}@{VERSION}", Path(tmp))
        source = read_source(tgz, check_integrity)
    vocab = decode_vocab(source.js_source)
    merges = decode_merges(source.js_source, vocab)
    write_outputs(out, build_tokenizer(vocab, merges), source, len(merges))
    lines = [
        f"source {source.name}@{source.version} {source.integrity} (sha1 {source.shasum})",
        f"vocab {len(vocab)} pieces, {len(merges)} merges",
    ]
    return lines + verify(out / "tokenizer.json")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 when the build or a check fails)."""
    parser = argparse.ArgumentParser(description=f"Build the Llama-2 tokenizer files from {PACKAGE}@{VERSION}.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--tgz", type=Path, help=f"use this {PACKAGE}-{VERSION}.tgz instead of running npm pack")
    parser.add_argument(
        "--no-integrity-check",
        action="store_true",
        help=f"accept a tarball whose hash differs from {PACKAGE}@{VERSION}",
    )
    args = parser.parse_args(argv)
    try:
        report = build(args.out, args.tgz, check_integrity=not args.no_integrity_check)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report))
    print(f"wrote {args.out}: " + ", ".join(f"{p.name} {p.stat().st_size} B" for p in sorted(args.out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
