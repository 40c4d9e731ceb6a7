# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Loading and validating the original OneGen JSONL formats (`db.jsonl`, `train.jsonl`) into `datasets.Dataset`s.

- `db.jsonl`: `{"uid": str|int, "messages": [{"role": "user", ...}, {"role": "assistant", ...}, ...]}`; each document
  token in an assistant turn is one vector, addressed as `"{uid}-{k}"` (k-th, 0-based) or `"{uid}"` (k = 0).
- `train.jsonl`: `{"messages": [...]}` whose assistant turns carry `positive` (one entry per query-token occurrence:
  a uid, a list of acceptable uids, or null) and `negative` (one list of hard-negative uids per occurrence).

Every error names the file, the line and the field. Records are normalised to one schema (`positive` and
`negative` become lists of uid lists) so that Arrow can store them.
"""

import os
from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset
from transformers.utils import logging

from onegen.chat_utils import plain_messages
from onegen.file_utils import iter_jsonl


logger = logging.get_logger(__name__)


class OneGenDataError(ValueError):
    """Bad OneGen training data; the message names the file, line and field."""


class OneGenDataFileNotFoundError(OneGenDataError, FileNotFoundError):
    """A data file given by path is neither a local file nor a file of a Hub dataset."""


def _records(source, name: str) -> Iterator[tuple[str, dict]]:
    """Yield `(location, record)` from a JSONL path, a `datasets.Dataset` or a list of dicts."""
    if isinstance(source, (str, os.PathLike)):
        path = resolve_data_file(source, name)
        for line_number, record in iter_jsonl(path, OneGenDataError):
            yield f"{path}, line {line_number}", record
    else:
        for row_number, record in enumerate(source, start=1):
            yield f"{name}, row {row_number}", dict(record)


def _hub_file_spec(spec: str) -> tuple[str, str | None] | None:
    """`(repo_id, filename or None)` when `spec` can name a file of a Hub dataset (`org/name[/file.jsonl]`), None
    when it can only be a local path: absolute, `.`/`~`-relative, with backslashes, an invalid repo id, or under a
    local folder that exists (`data/wn-el/dev.jsonl` with a `data/` folder here is a path, not repo `data/wn-el`)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    parts = spec.split("/")
    if len(parts) < 2 or os.path.isabs(spec) or spec.startswith((".", "~")) or "\\" in spec or "" in parts:
        return None
    if Path(parts[0]).is_dir():
        return None
    repo_id = "/".join(parts[:2])
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return None
    return repo_id, "/".join(parts[2:]) or None


def resolve_data_file(source: str | os.PathLike, name: str = "data") -> Path:
    """The local path of a OneGen JSONL file given as a path, or as a Hub dataset file `org/name[/file.jsonl]`
    (downloaded; `org/name` alone means `{name}.jsonl`). A missing local file is reported as missing, with its
    absolute path, rather than looked up on the Hub; a spec that is neither gets one error saying both."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise OneGenDataFileNotFoundError(f"{name} file {str(source)!r} is a folder ({path.resolve()}); give the "
                                          "JSONL file inside it")
    hub = _hub_file_spec(str(source))
    if hub is None:
        raise OneGenDataFileNotFoundError(f"{name} file {str(source)!r} does not exist (no file at {path.resolve()})")
    from huggingface_hub import hf_hub_download

    repo_id, filename = hub
    try:
        return Path(hf_hub_download(repo_id, filename or f"{name}.jsonl", repo_type="dataset"))
    except Exception as error:  # offline, unknown repo or file, no connection: all mean "not found" here
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OneGenDataFileNotFoundError(
            f"{name} file {str(source)!r} does not exist: there is no file at {path.resolve()}, and it is not a file "
            f"of the Hub dataset {repo_id!r} either ({type(error).__name__}: {reason})"
        ) from error


def _check_messages(messages, where: str) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise OneGenDataError(f"{where}: field 'messages' must be a non-empty list of chat messages")
    offset = 1 if isinstance(messages[0], dict) and messages[0].get("role") == "system" else 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise OneGenDataError(f"{where}: field 'messages[{i}]' must be an object with a string 'content'")
        expected = "system" if i < offset else ("user", "assistant")[(i - offset) % 2]
        if message.get("role") != expected:
            raise OneGenDataError(
                f"{where}: field 'messages[{i}].role' is {message.get('role')!r}, expected {expected!r}: messages must "
                "alternate user/assistant, starting with user (after an optional system message)"
            )
    return messages


def parse_uid(uid: str) -> tuple[str, int]:
    """`"doc-3"` -> `("doc", 3)`, `"doc"` -> `("doc", 0)`."""
    base, _, index = str(uid).rpartition("-")
    if base and index.isdigit():
        return base, int(index)
    return str(uid), 0


def load_corpus(source, doc_token: str, name: str = "db") -> Dataset:
    """Load a OneGen `db.jsonl` (path, Hub id `org/name[/file]`, `Dataset` or list of dicts).

    Returns:
        `Dataset` with columns `uid` (str), `messages` (role/content only) and `num_vectors` (document tokens in
        assistant turns).
    """
    rows, seen = [], {}
    for where, record in _records(source, name):
        if "uid" not in record or record["uid"] is None:
            raise OneGenDataError(f"{where}: field 'uid' is missing")
        uid = str(record["uid"])
        if "-" in uid:
            raise OneGenDataError(f"{where}: field 'uid' is {uid!r}; uids must not contain '-' ('doc-k' names the "
                                  "k-th vector of doc)")
        if uid in seen:
            raise OneGenDataError(f"{where}: field 'uid' {uid!r} repeats {seen[uid]}")
        seen[uid] = where
        messages = _check_messages(record.get("messages"), where)
        num_vectors = sum(m["content"].count(doc_token) for m in messages if m["role"] == "assistant")
        if num_vectors == 0:
            raise OneGenDataError(f"{where}: field 'messages' has no {doc_token!r} in an assistant turn, so document "
                                  f"{uid!r} has no vector")
        rows.append({"uid": uid, "messages": plain_messages(messages),
                     "num_vectors": num_vectors})
    if not rows:
        raise OneGenDataError(f"{name}: the corpus is empty")
    return Dataset.from_list(rows)


def _uid_list(value, where: str, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return [str(v) for v in value]
    raise OneGenDataError(f"{where}: field '{field}' must be a uid, a list of uids or null, got {value!r}")


def load_train_examples(source, query_token: str, corpus: Dataset, name: str = "train") -> Dataset:
    """Load a OneGen `train.jsonl` and check it against `corpus` (from [`load_corpus`]).

    Returns:
        `Dataset` with columns `messages` (role/content only), `positives` and `negatives` (one list of uids per
        query-token occurrence in the assistant turns, in order; an empty positive list means no retrieval
        supervision for that occurrence) and `example_id`.
    """
    vectors = dict(zip(corpus["uid"], corpus["num_vectors"]))
    rows, dropped_negatives = [], 0
    for where, record in _records(source, name):
        messages = _check_messages(record.get("messages"), where)
        positives, negatives = [], []
        for i, message in enumerate(messages):
            count = message["content"].count(query_token)
            if message["role"] != "assistant":
                continue
            pos, neg = message.get("positive"), message.get("negative")
            pos = [] if pos is None and count == 0 else pos
            neg = [] if neg is None and count == 0 else neg
            for field, value in (("positive", pos), ("negative", neg)):
                if not isinstance(value, list) or len(value) != count:
                    raise OneGenDataError(
                        f"{where}: field 'messages[{i}].{field}' must be a list with one entry per {query_token!r} "
                        f"in the content ({count}), got {value!r}"
                    )
            for k, (entry_pos, entry_neg) in enumerate(zip(pos, neg)):
                uids = _uid_list(entry_pos, where, f"messages[{i}].positive[{k}]")
                for uid in uids:
                    doc, index = parse_uid(uid)
                    if index >= vectors.get(doc, 0):
                        raise OneGenDataError(f"{where}: field 'messages[{i}].positive[{k}]' names {uid!r}, which is "
                                              "not in the corpus")
                hard = _uid_list(entry_neg, where, f"messages[{i}].negative[{k}]")
                known = [u for u in hard if parse_uid(u)[1] < vectors.get(parse_uid(u)[0], 0)]
                dropped_negatives += len(hard) - len(known)
                positives.append(uids)
                negatives.append(known)
        rows.append({"messages": plain_messages(messages),
                     "positives": positives, "negatives": negatives, "example_id": len(rows)})
    if dropped_negatives:
        logger.warning(f"{name}: dropped {dropped_negatives} hard negatives whose uid is not in the corpus")
    if not rows:
        raise OneGenDataError(f"{name}: no training examples")
    return Dataset.from_list(rows)
