# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Reader for GCIDE (Debian's `dict-gcide`): dictd index + dictzip body file, and its Webster-1913 senses.

`gcide.index` lines are `headword \\t offset \\t length`, offset and length in dictd's base64 (alphabet `A-Z a-z 0-9 + /`,
most significant digit first); `gcide.dict.dz` is a dictzip file, which `gzip` reads. Several headwords share one
entry body. A body starts with a header (`Bank \\Bank\\ (b[a^][ng]k), n. [etymology]`) and is made of blank-line
separated blocks, each ending with its source tag. Only blocks tagged exactly `[1913 Webster]` are used: GCIDE also
imported WordNet 1.5 senses and later (partly WordNet-derived) additions, which would leak the WordNet KB.
"""

import gzip
import re
from dataclasses import dataclass
from pathlib import Path


_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
WEBSTER_TAG = "[1913 Webster]"

# GCIDE's ASCII escapes for special letters (`[a^]`, `[=e]`, `["o]`, `[ae]`, ...): named ones, then a generic rule.
_NAMED_ESCAPES = {"ae": "ae", "AE": "AE", "oe": "oe", "OE": "OE", "imac": "i", "aum": "a", "eth": "th", "thorn": "th",
                  "ng": "ng", "deg": "°", "th": "th", "yogh": "y", "udd": "u", "asl": "a", "add": "a", "sect": "§"}
_ACCENTED = re.compile(r"^(?:[=^'`\"~.,\-*][A-Za-z]{1,2}|[A-Za-z]{1,2}[\^~\"'`])$")
_ESCAPE = re.compile(r"\[([^\]\s]{1,5})\]")
# blocks that are not definitions: phrases, synonym lists, notes, cross-references, inflection notes
_NOT_A_SENSE = ("{", "Syn:", "Note:", "Usage:", "See ", "[", "Same as ")
_INFLECTION_NOTE = re.compile(
    r"^(?:imp\.|p\. ?p\.|p\. ?pr\.|pl\.|pret\.|obs\.|3d pers|superl\.|compar\.|a\.|n\.|v\. ?[ti]\.)", re.I
)
_HEADER_TAIL = re.compile(
    r"\s+|\([^()]*\)|\{[^{}]*\}|[,;.&]|(?:[a-z]{1,5}\.\s*)+(?![a-z])|[A-Za-z][^\\\n,]*\s*\\[^\\\n]*\\"
    r"|[A-Za-z][\w'-]*\s*\([^()]*[\"*`][^()]*\)"
)
_POS = re.compile(r"(?<![A-Za-z])(n|v|a|adv)\.")
_POS_LETTER = {"n": "n", "v": "v", "a": "a", "adv": "r"}
_HEADWORD = re.compile(r"([^\\\n,]+?)\s*\\[^\\\n]*\\")


class GcideFormatError(ValueError):
    """A GCIDE source line does not parse; the message names the file, the line and the field."""


@dataclass
class WebsterEntry:
    headwords: list[str]  # as written in the header, e.g. ["Banc", "Bancus", "Bank"]
    pos: str | None  # WordNet pos letter of the header's part of speech (n., v. t., a., adv.), None when unknown
    definition: str  # first `[1913 Webster]` sense, cleaned (no numbering, tags, braces, quotations)


def decode_b64(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + _B64[char]
    return value


def _unescape(match: re.Match) -> str:
    inner = match.group(1)
    if inner in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[inner]
    if _ACCENTED.match(inner):  # a letter plus an accent mark: [a^], [=e], ['e], ["o], [.a]
        return re.sub(r"[^A-Za-z]", "", inner)
    return match.group(0)  # a label such as [Obs.] or [R.]


def read_bodies(folder: str | Path) -> list[str]:
    """Distinct entry bodies of `gcide.index` / `gcide.dict.dz`, in index order (dictd's meta entries skipped)."""
    folder = Path(folder)
    index_path, dict_path = folder / "gcide.index", folder / "gcide.dict.dz"
    for path in (index_path, dict_path):
        if not path.is_file():
            raise FileNotFoundError(f"GCIDE file {path} is missing")
    data = gzip.open(dict_path).read()
    seen, bodies = set(), []
    with open(index_path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            parts = line.split("\t")
            if len(parts) != 3:
                raise GcideFormatError(f"{index_path}, line {lineno}: expected 3 tab-separated fields "
                                       f"(headword, offset, length), got {len(parts)}: {line[:120]!r}")
            headword, offset, length = parts
            try:
                start, size = decode_b64(offset), decode_b64(length)
            except KeyError as err:
                field = "offset" if any(c not in _B64 for c in offset) else "length"
                raise GcideFormatError(f"{index_path}, line {lineno}: field {field} has the non-base64 character "
                                       f"{err.args[0]!r}: {line[:120]!r}") from None
            if start + size > len(data):
                raise GcideFormatError(f"{index_path}, line {lineno}: field offset/length points past the end of "
                                       f"{dict_path.name} ({start}+{size} > {len(data)})")
            if headword.startswith("00-database") or (start, size) in seen:
                continue
            seen.add((start, size))
            bodies.append(data[start : start + size].decode("utf-8", errors="replace"))
    return bodies


def _skip_bracket(text: str, at: int) -> int:
    """Index just past the bracket group opening at `text[at]` (nested brackets allowed; end of text if unclosed)."""
    depth = 0
    for i in range(at, len(text)):
        depth += {"[": 1, "]": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    return len(text)


def _split_header(block: str) -> tuple[str, str]:
    """(header, rest) of a body's first block. The header is the headword part of the first line (`Word \\Syl*la*ble\\`,
    possibly several), then any pronunciation `( ... )`, part-of-speech abbreviations (`n.`, `v. t.`, `imp. & p. p.`),
    punctuation and etymology `[ ... ]` that follow it, across line breaks."""
    first_line = block.split("\n", 1)[0]
    at = first_line.rfind("\\") + 1
    while at < len(block):
        match = _HEADER_TAIL.match(block, at)
        if match and match.end() > at:
            at = match.end()
        elif block.startswith("[", at):
            at = _skip_bracket(block, at)
        else:
            break
    return block[:at], block[at:]


def _clean_sense(text: str) -> str:
    text = re.sub(r"\{([^{}]*)\}", r"\1", text)  # cross-reference braces
    text = re.sub(r'\s*"[^"]*"\s*--.*$', "", text, flags=re.S)  # an inline quotation and everything after it
    text = re.sub(r"\s+--\s*[A-Z].*$", "", text, flags=re.S)  # a citation, or a derived form (-- So*mit`ic, a.)
    text = re.sub(r"\s*\[[^\[\]]*\]", "", text)  # labels and notes: [Obs.], [R.], [Written also ...]
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"^(?:\d+\.|\([a-z]\))\s*", "", text)
    return text


def first_webster_sense(body: str) -> WebsterEntry | None:
    """Headwords and first usable `[1913 Webster]` sense of one body, or None when it has none."""
    blocks = re.split(r"\n\s*\n", _ESCAPE.sub(_unescape, body).strip("\n"))
    header, rest = _split_header(blocks[0])
    headwords = [m.group(1).strip() for m in _HEADWORD.finditer(header)]
    if not headwords:
        return None
    blocks[0] = rest
    pos_match = _POS.search(header[header.rfind("\\") + 1 :])
    pos = _POS_LETTER.get(pos_match.group(1)) if pos_match else None
    for block in blocks:
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines or lines[-1].strip() != WEBSTER_TAG:
            continue
        content = lines[:-1]
        if not content or len(content[0]) - len(content[0].lstrip()) >= 8:  # a quotation, indented deeper
            continue
        text = "\n".join(content).strip()
        if text.startswith(_NOT_A_SENSE):
            continue
        sense = _clean_sense(text)
        if len(sense.split()) >= 4 and re.match(r"[A-Z(]", sense) and not sense.startswith(_NOT_A_SENSE) \
                and not _INFLECTION_NOTE.match(sense):
            return WebsterEntry(headwords=headwords, pos=pos, definition=sense)
    return None
