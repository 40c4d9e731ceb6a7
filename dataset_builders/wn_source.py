# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Reader for Princeton WordNet 3.0 database files (WNDB format, as shipped by Debian's `wordnet-base`).

`data.<pos>` lines: `offset lex_filenum ss_type w_cnt (word lex_id)* p_cnt (symbol offset pos src/tgt)* [frames] | gloss`
with `w_cnt` in hex and `p_cnt` in decimal; the gloss is `definition; "example"; "example"`. `index.<pos>` lines:
`lemma pos synset_cnt p_cnt (symbol)* sense_cnt tagsense_cnt (offset)*`, offsets in sense order (SemCor frequency).
`<pos>.exc` lines: `inflected base [base ...]`. Lines starting with two spaces are the licence header.

A synset id is its pos letter and offset, e.g. `n00169305` (adjective satellites `s` are filed under `a`): ids carry
no `-`, as OneGen's uid addressing (`"doc-k"`) requires.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path


POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}


class WordNetFormatError(ValueError):
    """A WordNet source line does not parse; the message names the file, the line and the field."""


@dataclass
class Synset:
    id: str
    pos: str  # n, v, a, r (satellites are "a")
    lemmas: list[str]  # as written, underscores turned into spaces, adjective markers such as "(a)" removed
    pointers: list[tuple[str, str]]  # (pointer symbol, target synset id)
    definition: str
    examples: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The KB text of this synset: `lemma1, lemma2: definition` (examples are never part of the KB)."""
        return f"{', '.join(self.lemmas)}: {self.definition}"

    def related(self, *symbols: str) -> list[str]:
        return [target for symbol, target in self.pointers if symbol in symbols]


def synset_id(pos: str, offset: str) -> str:
    return ("a" if pos == "s" else pos) + offset


_EXAMPLE_START = re.compile(r'(?:^|;\s*)"')
_QUOTED = re.compile(r'"([^"]*)"')
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """(definition, examples) of a gloss; examples are its quoted parts after the definition."""
    start = _EXAMPLE_START.search(gloss)
    if start is None:
        return gloss.strip().rstrip(";").strip(), []
    definition = gloss[: start.start()].strip().rstrip(";").strip()
    examples = [m.group(1).strip() for m in _QUOTED.finditer(gloss[start.start():]) if m.group(1).strip()]
    return definition, examples


def _fail(path: Path, lineno: int, what: str, line: str) -> WordNetFormatError:
    return WordNetFormatError(f"{path}, line {lineno}: {what}: {line[:120]!r}")


def parse_data_line(line: str, path: Path, lineno: int) -> Synset:
    """Parse one `data.<pos>` line into a `Synset`."""
    head, bar, gloss = line.partition("|")
    if not bar:
        raise _fail(path, lineno, "field gloss: no '|' separating the gloss", line)
    fields = head.split()
    try:
        offset, ss_type = fields[0], fields[2]
        if not offset.isdigit() or len(offset) != 8:
            raise _fail(path, lineno, f"field synset_offset is {offset!r}, expected 8 digits", line)
        if ss_type not in ("n", "v", "a", "s", "r"):
            raise _fail(path, lineno, f"field ss_type is {ss_type!r}, expected one of n v a s r", line)
        try:
            w_cnt = int(fields[3], 16)
        except ValueError:
            raise _fail(path, lineno, f"field w_cnt is {fields[3]!r}, expected a hex count", line) from None
        words = fields[4 : 4 + 2 * w_cnt : 2]
        at = 4 + 2 * w_cnt
        try:
            p_cnt = int(fields[at])
        except ValueError:
            raise _fail(path, lineno, f"field p_cnt is {fields[at]!r}, expected a decimal count", line) from None
        pointers = []
        for i in range(p_cnt):
            if len(fields) < at + 5 + 4 * i:
                raise IndexError(i)
            symbol, target, target_pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
            if not target.isdigit() or target_pos not in ("n", "v", "a", "s", "r"):
                raise _fail(path, lineno, f"pointer {i} ({symbol} {target} {target_pos}) is malformed", line)
            pointers.append((symbol, synset_id(target_pos, target)))
    except IndexError:
        raise _fail(path, lineno, "too few fields (word or pointer list cut short)", line) from None
    if len(words) != w_cnt or not words:
        raise _fail(path, lineno, f"field w_cnt says {w_cnt} words, found {len(words)}", line)
    lemmas = [_ADJ_MARKER.sub("", word).replace("_", " ") for word in words]
    definition, examples = split_gloss(gloss.strip())
    return Synset(id=synset_id(ss_type, offset), pos="a" if ss_type == "s" else ss_type, lemmas=lemmas,
                  pointers=pointers, definition=definition, examples=examples)


def _content_lines(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"WordNet file {path} is missing")
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.startswith("  ") or not line.strip():
                continue
            yield lineno, line.rstrip("\n")


class WordNet:
    """All synsets, the lemma index and the irregular-form (exception) lists of one WordNet folder."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.synsets: dict[str, Synset] = {}
        self.index: dict[tuple[str, str], list[str]] = {}  # (lowercase lemma with spaces, pos) -> ids in sense order
        self.exceptions: dict[str, dict[str, list[str]]] = {pos: {} for pos in POS_FILES}  # base -> inflected forms
        for pos, name in POS_FILES.items():
            path = self.folder / f"data.{name}"
            for lineno, line in _content_lines(path):
                synset = parse_data_line(line, path, lineno)
                self.synsets[synset.id] = synset
        for pos, name in POS_FILES.items():
            path = self.folder / f"index.{name}"
            for lineno, line in _content_lines(path):
                self._parse_index_line(line, pos, path, lineno)
            path = self.folder / f"{name}.exc"
            for lineno, line in _content_lines(path):
                inflected, *bases = line.split()
                if not bases:
                    raise _fail(path, lineno, "field base form is missing", line)
                for base in bases:
                    self.exceptions[pos].setdefault(base.replace("_", " "), []).append(inflected.replace("_", " "))

    def _parse_index_line(self, line: str, pos: str, path: Path, lineno: int) -> None:
        fields = line.split()
        try:
            lemma, synset_cnt, p_cnt = fields[0], int(fields[2]), int(fields[3])
            offsets = fields[6 + p_cnt : 6 + p_cnt + synset_cnt]
        except (IndexError, ValueError):
            raise _fail(path, lineno, "fields synset_cnt / p_cnt are missing or not numbers", line) from None
        if len(offsets) != synset_cnt or not all(o.isdigit() for o in offsets):
            raise _fail(path, lineno, f"field synset_offset list: expected {synset_cnt} offsets", line)
        ids = [synset_id(pos, o) for o in offsets]
        unknown = [i for i in ids if i not in self.synsets]
        if unknown:
            raise _fail(path, lineno, f"synset offsets {unknown} are not in data.{POS_FILES[pos]}", line)
        self.index[(lemma.replace("_", " ").lower(), pos)] = ids

    def senses(self, lemma: str, pos: str | None = None) -> list[str]:
        """Synset ids of `lemma` in WordNet's sense order, for one pos or all (n, v, a, r order)."""
        key = lemma.lower().replace("_", " ")
        poses = [pos] if pos else list(POS_FILES)
        return [sid for p in poses for sid in self.index.get((key, p), [])]


# ------------------------------------------------------------------------------------------------------------------
# Finding a lemma inside an example sentence (regular inflection rules plus the .exc irregular forms)
# ------------------------------------------------------------------------------------------------------------------
_VOWELS = set("aeiou")


def _regular_forms(word: str, pos: str) -> set[str]:
    forms = {word}
    if pos == "n":
        forms |= {word + "s", word + "es"}
        if len(word) > 1 and word.endswith("y") and word[-2] not in _VOWELS:
            forms.add(word[:-1] + "ies")
    elif pos in ("v", "a"):
        suffixes = ("s", "es", "ed", "ing") if pos == "v" else ("er", "est")
        forms |= {word + s for s in suffixes}
        if word.endswith("e"):
            forms |= {word[:-1] + s for s in suffixes if s[0] in "ei"}
        if len(word) > 1 and word.endswith("y") and word[-2] not in _VOWELS:
            forms |= {word[:-1] + ("ies" if s == "s" else "ied" if s == "ed" else "i" + s) for s in suffixes if s != "ing"}
        if len(word) >= 3 and word[-1] not in _VOWELS | set("wxy") and word[-2] in _VOWELS and word[-3] not in _VOWELS:
            forms |= {word + word[-1] + s for s in suffixes if s[0] in "ei"}  # stop -> stopped, big -> bigger
    return forms


def surface_forms(lemma: str, pos: str, exceptions: dict[str, list[str]]) -> set[str]:
    """Lower-case forms under which `lemma` may appear in text: itself, its regular inflections and its irregular
    forms. A multi-word lemma inflects its head: the first word for verbs ("take off"), the last otherwise."""
    lemma = lemma.lower()
    words = lemma.split(" ")
    head_at = 0 if pos == "v" else len(words) - 1
    head = words[head_at]
    heads = _regular_forms(head, pos) | set(exceptions.get(head, [])) if len(words) > 1 else set()
    forms = {" ".join(words[:head_at] + [h] + words[head_at + 1:]) for h in heads}
    forms |= _regular_forms(lemma, pos) if len(words) == 1 else {lemma}
    forms |= set(exceptions.get(lemma, []))
    return forms


def find_mention(sentence: str, lemmas: list[str], pos: str, exceptions: dict[str, list[str]]):
    """First, longest occurrence of any lemma form in `sentence`, as `(start, end, lemma)`, or None."""
    lowered = sentence.lower()
    best = None
    for lemma in lemmas:
        for form in surface_forms(lemma, pos, exceptions):
            if form not in lowered:  # cheap test first: most forms do not occur
                continue
            for match in re.finditer(r"(?<![\w-])" + re.escape(form) + r"(?![\w-])", lowered):
                key = (match.start(), -(match.end() - match.start()))
                if best is None or key < best[0]:
                    best = (key, (match.start(), match.end(), lemma))
    return best[1] if best else None


def co_hyponyms(wordnet: WordNet, synset_id_: str) -> list[str]:
    """Synsets sharing a hypernym (or instance hypernym) with `synset_id_`, in id order, itself excluded."""
    synset = wordnet.synsets[synset_id_]
    siblings = []
    for parent in synset.related("@", "@i"):
        siblings += wordnet.synsets[parent].related("~", "~i")
    return sorted(set(siblings) - {synset_id_})


def mentions_name(text: str, names: list[str]) -> str | None:
    """The first of `names` that occurs in `text` as whole words (case-sensitive for capitalised names)."""
    for name in names:
        flags = 0 if name[:1].isupper() else re.I
        if re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", text, flags):
            return name
    return None
