"""Dataset builders (hub_scripts/): parsers on malformed fixtures, the split rule, atomic writing, and real builds of
WN-EL, RD-1913 and WN-2Hop from Debian's wordnet-base and dict-gcide (fetched by the builders themselves)."""

import gzip
import hashlib

import pytest

from onegen.dataset_builders import common as builder_common  # noqa: E402
from onegen.dataset_builders import (
    debian_sources,  # noqa: E402
    gcide_source,  # noqa: E402
    wn_source,  # noqa: E402
)


# ----------------------------------------------------------------------------------------------------------------
# Split rule, sampling, KB subset, atomic writing
# ----------------------------------------------------------------------------------------------------------------
def test_split_rule_is_the_public_salted_hash():
    for key in ("bank", "deepen", "n09070793|n09090001"):
        bucket = int(hashlib.sha256(("onegen-v0:" + key).encode()).hexdigest(), 16) % 1000
        expected = "test" if bucket < 150 else "dev" if bucket < 200 else "train"
        assert builder_common.split_of(key) == expected
    shares = [builder_common.split_of(f"lemma{i}") for i in range(20_000)]
    assert shares.count("test") / len(shares) == pytest.approx(0.15, abs=0.01)
    assert shares.count("dev") / len(shares) == pytest.approx(0.05, abs=0.005)


def test_choose_kb_keeps_required_documents_and_is_deterministic():
    all_ids = [f"n{i:08d}" for i in range(1000)]
    required = ["n00000999", "n00000003", "n00000003"]
    kb = builder_common.choose_kb(all_ids, required, 50)
    assert len(kb) == 50 and {"n00000999", "n00000003"} <= set(kb) and kb == sorted(kb)
    assert kb == builder_common.choose_kb(all_ids, required, 50)
    with pytest.raises(ValueError, match="raise --kb_size"):
        builder_common.choose_kb(all_ids, all_ids[:60], 50)


def test_fit_to_kb_refuses_dev_and_test_that_do_not_fit():
    rows = {s: [{"gold_doc_ids": [f"{s}{i}"]} for i in range(10)] for s in builder_common.SPLITS}
    with pytest.raises(ValueError, match="dev and test queries alone need 20 documents"):
        builder_common.fit_to_kb(rows, lambda r: r["gold_doc_ids"], 20)
    splits, needed, training_only = builder_common.fit_to_kb(rows, lambda r: r["gold_doc_ids"], 30)
    assert len(splits["dev"]) == len(splits["test"]) == 10 and len(needed) == 24


def test_fit_to_kb_keeps_every_train_query_and_puts_what_does_not_fit_in_the_corpus_only():
    rows = {s: [{"gold_doc_ids": [f"{s}{i}", "shared"]} for i in range(10)] for s in builder_common.SPLITS}
    splits, needed, training_only = builder_common.fit_to_kb(rows, lambda r: r["gold_doc_ids"], 30)
    # dev + test need 21 documents of the 24 the KB holds for queries: 3 train queries fit, 7 train from outside it
    assert len(splits["train"]) == 10 and len(needed) == 24 and {"train0", "train2"} <= set(needed)
    assert training_only == [f"train{i}" for i in range(3, 10)] and not set(training_only) & set(needed)
    assert builder_common.fit_to_kb(rows, lambda r: r["gold_doc_ids"], None)[2] == []


def test_bm25_mining_fills_hard_negatives_with_the_near_misses_never_a_gold_document():
    documents = [{"doc_id": f"d{i}", "text": text} for i, text in enumerate([
        "sundial: timepiece that shows the time of day by the shadow of a gnomon",
        "sandglass: timepiece in which the passage of time is shown by flowing sand",
        "hour, time of day: clock time",
        "barrel: a tube through which a bullet travels",
        "gnomon: the pin of a sundial whose shadow shows the time",
        "hose: a flexible pipe for conveying a liquid",
    ])]

    def record(query, gold, hard):
        return {"query": query, "messages": [{"role": "user", "content": query},
                                             {"role": "assistant", "content": "[RQ]", "positive": [gold],
                                              "negative": [hard]}]}

    sundial = record("An instrument to show the time of day by the shadow of a gnomon", ["d0"], ["d3"])
    two_hops = record("the time of day", ["d0"], [])
    two_hops["messages"][1].update(positive=[["d0"], ["d1"]], negative=[[], []])
    builder_common.mine_bm25_negatives([sundial, two_hops], documents, limit=3)
    # The negative it had comes first; then BM25's best non-gold documents (the sundial's own gloss is gold).
    assert sundial["messages"][1]["negative"] == [["d3", "d4", "d2"]]
    assert two_hops["messages"][1]["negative"] == [[], []]  # several query tokens: left as they are


def _tiny_split_records(tokens):
    records = []
    for i, split_key in enumerate(["a", "b", "c", "d"]):
        records.append({"id": f"q{i}", "task": "wn-el", "query": "x", "answers": ["x"], "gold_doc_ids": ["d1"],
                        "group": split_key, "messages": [{"role": "user", "content": "x"},
                                                         tokens.link_turn("x", ["d1"], [])]})
    return builder_common.assign_splits(records, {"train": 10, "dev": 10, "test": 10})


def test_failed_build_leaves_nothing_and_keeps_the_previous_folder(tmp_path):
    tokens = builder_common.OneGenTokens()
    splits = _tiny_split_records(tokens)
    kb = [{"doc_id": "d1", "title": "x", "text": "x: y"}]
    out = tmp_path / "wn-el"

    def broken_card(folder, info):
        raise RuntimeError("card failed")

    with pytest.raises(RuntimeError, match="card failed"):
        builder_common.write_dataset(out, "wn-el", kb, splits, tokens, {}, broken_card)
    assert list(tmp_path.iterdir()) == []
    builder_common.write_dataset(out, "wn-el", kb, splits, tokens, {}, lambda f, i: (f / "README.md").write_text("ok"))
    with pytest.raises(RuntimeError):
        builder_common.write_dataset(out, "wn-el", kb, splits, tokens, {}, broken_card)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wn-el"] and (out / "README.md").read_text() == "ok"


# ----------------------------------------------------------------------------------------------------------------
# Parsers on malformed fixtures
# ----------------------------------------------------------------------------------------------------------------
GOOD_NOUN = ("00169305 04 n 01 bank 0 001 @ 00170844 n 0000 | a flight maneuver; aircraft tips laterally; "
             "\"the plane went into a steep bank\"\n"
             "00170844 04 n 01 maneuver 0 000 | a movement\n")


def _wordnet_folder(tmp_path, data_noun=GOOD_NOUN, index_noun="bank n 1 1 @ 1 0 00169305  \n"):
    folder = tmp_path / "wn"
    folder.mkdir()
    for name in ("noun", "verb", "adj", "adv"):
        (folder / f"data.{name}").write_text("  1 This software and database is being provided\n")
        (folder / f"index.{name}").write_text("  1 licence header\n")
        (folder / f"{name}.exc").write_text("")
    (folder / "data.noun").write_text("  1 licence\n" + data_noun)
    (folder / "index.noun").write_text("  1 licence\n" + index_noun)
    (folder / "verb.exc").write_text("took take\n")
    return folder


def test_wordnet_reader_on_a_valid_fixture(tmp_path):
    wordnet = wn_source.WordNet(_wordnet_folder(tmp_path))
    bank = wordnet.synsets["n00169305"]
    assert bank.definition == "a flight maneuver; aircraft tips laterally"
    assert bank.examples == ["the plane went into a steep bank"] and bank.render().startswith("bank: a flight")
    assert wordnet.senses("Bank") == ["n00169305"] and wordnet.exceptions["v"]["take"] == ["took"]


@pytest.mark.parametrize("line, field", [
    ("0016930X 04 n 01 bank 0 000 | gloss\n", "synset_offset"),
    ("00169305 04 n zz bank 0 000 | gloss\n", "w_cnt"),
    ("00169305 04 n 01 bank 0 002 @ 00170844 n 0000 | gloss\n", "too few fields"),
    ("00169305 04 q 01 bank 0 000 | gloss\n", "ss_type"),
    ("00169305 04 n 01 bank 0 000 gloss without separator\n", "gloss"),
])
def test_wordnet_reader_names_file_line_and_field(tmp_path, line, field):
    folder = _wordnet_folder(tmp_path, data_noun=GOOD_NOUN + line)
    with pytest.raises(wn_source.WordNetFormatError) as err:
        wn_source.WordNet(folder)
    message = str(err.value)
    assert str(folder / "data.noun") in message and "line 4" in message and field in message


def test_wordnet_index_pointing_outside_the_data_is_refused(tmp_path):
    folder = _wordnet_folder(tmp_path, index_noun="bank n 1 1 @ 1 0 99999999  \n")
    with pytest.raises(wn_source.WordNetFormatError, match=r"index\.noun, line 2: synset offsets \['n99999999'\]"):
        wn_source.WordNet(folder)


def test_mention_finder_uses_inflections_and_irregular_forms():
    exceptions = {"take": ["took"], "goose": ["geese"], "good": ["better"]}
    find = wn_source.find_mention
    assert find("He stopped the car", ["stop"], "v", {}) == (3, 10, "stop")
    assert find("the plane took off at noon", ["take off"], "v", exceptions) == (10, 18, "take off")
    assert find("Geese flew over", ["goose"], "n", exceptions) == (0, 5, "goose")
    assert find("the cities of the north", ["city"], "n", {}) == (4, 10, "city")
    assert find("a bigger house", ["big"], "a", {}) == (2, 8, "big")
    assert find("the embankment", ["bank"], "n", {}) is None  # whole words only


def _gcide_folder(tmp_path, bodies: list[str], index_lines: list[str] | None = None):
    folder = tmp_path / "gcide"
    folder.mkdir()
    data, lines = b"", []
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def b64(n):
        digits = ""
        while True:
            digits = alphabet[n % 64] + digits
            n //= 64
            if n == 0:
                return digits

    for i, body in enumerate(bodies):
        raw = body.encode()
        lines.append(f"head{i}\t{b64(len(data))}\t{b64(len(raw))}")
        data += raw
    (folder / "gcide.dict.dz").write_bytes(gzip.compress(data))
    if index_lines is None:  # a second headword pointing at the first body, as GCIDE's index does
        index_lines = lines + ["alias\t" + lines[0].split("\t", 1)[1]]
    (folder / "gcide.index").write_text("\n".join(index_lines) + "\n")
    return folder


DEEPEN = """Deepen \\Deep"en\\, v. t. [imp. & p. p. {Deepened}; p. pr. &
   vb. n. {Deepening}.]
   1. To make deep or deeper; to increase the depth of; to sink
      lower; as, to deepen a well or a channel.
      [1913 Webster]

            It would . . . deepen the bed of the Thames. --Bacon.
      [1913 Webster]
"""
WORDNET_ONLY = """Actinian \\Actinian\\ n.
   1. any sea anemone or related animal.
      [WordNet 1.5]
"""


def test_gcide_reader_keeps_only_webster_1913_senses(tmp_path):
    bodies = gcide_source.read_bodies(_gcide_folder(tmp_path, [DEEPEN, WORDNET_ONLY]))
    assert bodies == [DEEPEN, WORDNET_ONLY]  # the alias line points at the first body again: one body
    entry = gcide_source.first_webster_sense(DEEPEN)
    assert entry.headwords == ["Deepen"] and entry.pos == "v"
    assert entry.definition == ("To make deep or deeper; to increase the depth of; to sink lower; as, to deepen a "
                                "well or a channel.")
    assert gcide_source.first_webster_sense(WORDNET_ONLY) is None


@pytest.mark.parametrize("line, message", [
    ("head\tA", "expected 3 tab-separated fields"),
    ("head\tA!\tB", "field offset has the non-base64 character '!'"),
    ("head\tA\tzzzz", "field offset/length points past the end"),
])
def test_gcide_index_errors_name_line_and_field(tmp_path, line, message):
    folder = _gcide_folder(tmp_path, [DEEPEN], index_lines=["head\tA\tB", line])
    with pytest.raises(gcide_source.GcideFormatError) as err:
        gcide_source.read_bodies(folder)
    assert f"{folder / 'gcide.index'}, line 2" in str(err.value) and message in str(err.value)


# ----------------------------------------------------------------------------------------------------------------
# Debian sources
# ----------------------------------------------------------------------------------------------------------------
def test_missing_debian_tools_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no dpkg on this PATH
    with pytest.raises(debian_sources.DebianSourceError, match="`apt-get` is not available"):
        debian_sources.locate_package("dict-gcide", cache_dir=tmp_path / "cache")
    with pytest.raises(debian_sources.DebianSourceError, match="downloading is off"):
        debian_sources.locate_package("dict-gcide", cache_dir=tmp_path / "cache", allow_download=False)


def test_explicit_folder_without_the_files_is_refused(tmp_path):
    with pytest.raises(debian_sources.DebianSourceError, match=r"not a wordnet-base data folder, it lacks \['data.noun'"):
        debian_sources.locate_package("wordnet-base", explicit_dir=tmp_path)
