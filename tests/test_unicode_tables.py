"""kbert/tokenizer/unicode_tables.json agrees with the installed Rust ``tokenizers`` library.

The tables are generated once by ``tools/make_unicode_tables.py``; this re-runs the same probes on a
deterministic sample of code points (all of U+0000..U+2FFF plus a seeded sample of the rest) to catch
drift between the checked-in tables and the tokenizer kbert must match.
"""

import bisect
import json
import random

import pytest

from conftest import ROOT

tokenizers = pytest.importorskip("tokenizers")
from tokenizers.normalizers import BertNormalizer  # noqa: E402
from tokenizers.pre_tokenizers import BertPreTokenizer  # noqa: E402

TABLES = json.loads((ROOT / "kbert" / "tokenizer" / "unicode_tables.json").read_text(encoding="utf-8"))
KEEP, REMOVE, SPACE = 0, 1, 2
WORD, ISOLATE, SEPARATOR = 0, 1, 2
SURROGATES = range(0xD800, 0xE000)
MAPPING_OPTIONS = {  # table key -> (strip_accents, lowercase), as the script builds them
    "strip_accents+lowercase": (True, True),
    "lowercase": (False, True),
    "strip_accents": (True, False),
}


def sample_code_points() -> list[int]:
    low = list(range(0x3000))
    rest = [cp for cp in range(0x3000, 0x110000) if cp not in SURROGATES]
    return low + sorted(random.Random(20240607).sample(rest, 8000))


SAMPLE = sample_code_points()


def lookup(runs, cp):
    starts = [start for start, _ in runs]
    return runs[bisect.bisect_right(starts, cp) - 1][1]


def probe_clean(norm, cp):
    out = norm.normalize_str("a" + chr(cp) + "b")
    if out == "ab":  # checked in the script's order: U+0020 itself is SPACE, not KEEP
        return REMOVE
    if out == "a b":
        return SPACE
    if out == "a" + chr(cp) + "b":
        return KEEP
    return ("unexpected", out)


def probe_split(pre, chinese, cp):
    c = chr(cp)
    if chinese.normalize_str(c) == f" {c} ":
        return ISOLATE
    pieces = [p for p, _ in pre.pre_tokenize_str("a" + c + "b")]
    if pieces == ["a", c, "b"]:
        return ISOLATE
    if pieces == ["a", "b"]:
        return SEPARATOR
    if pieces == ["a" + c + "b"]:
        return WORD
    return ("unexpected", pieces)


def describe(bad, limit=20):
    return f"{len(bad)} code points differ (tables from {TABLES['generated_by']}, installed tokenizers " \
           f"{tokenizers.__version__}), e.g. " + ", ".join(f"U+{cp:04X}: table {t!r} vs rust {r!r}"
                                                            for cp, t, r in bad[:limit])


def test_sample_is_deterministic_and_large():
    assert len(SAMPLE) == len(set(SAMPLE)) == 0x3000 + 8000
    assert SAMPLE == sample_code_points()
    assert not any(cp in SURROGATES for cp in SAMPLE)


def test_runs_are_well_formed():
    for key in ("clean_text_runs", "split_runs"):
        runs = TABLES[key]
        starts = [start for start, _ in runs]
        assert starts[0] == 0 and starts == sorted(set(starts)), key
        assert all(a[1] != b[1] for a, b in zip(runs, runs[1:])), f"{key}: adjacent runs of the same class"
        assert {cls for _, cls in runs} <= {0, 1, 2}, key
    for key, table in TABLES["mappings"].items():
        assert all(0 <= int(cp) < 0x110000 and int(cp) not in SURROGATES for cp in table), key


def test_surrogates_are_removed_and_separate():
    for cp in (0xD800, 0xDBFF, 0xDC00, 0xDFFF):
        assert lookup(TABLES["clean_text_runs"], cp) == REMOVE
        assert lookup(TABLES["split_runs"], cp) == SEPARATOR


def test_clean_text_classes_match_rust():
    norm = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    runs = TABLES["clean_text_runs"]
    bad = [(cp, lookup(runs, cp), r) for cp in SAMPLE if lookup(runs, cp) != (r := probe_clean(norm, cp))]
    assert not bad, describe(bad)


def test_split_classes_match_rust():
    pre = BertPreTokenizer()
    chinese = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    runs = TABLES["split_runs"]
    bad = [(cp, lookup(runs, cp), r) for cp in SAMPLE if lookup(runs, cp) != (r := probe_split(pre, chinese, cp))]
    assert not bad, describe(bad)


@pytest.mark.parametrize("key", list(MAPPING_OPTIONS))
def test_mappings_match_rust(key):
    strip_accents, lowercase = MAPPING_OPTIONS[key]
    norm = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=strip_accents,
                          lowercase=lowercase)
    table = TABLES["mappings"][key]
    bad = []
    for cp in SAMPLE:
        out = norm.normalize_str(chr(cp))
        rust = None if out == chr(cp) else [ord(x) for x in out]
        if table.get(str(cp)) != rust:
            bad.append((cp, table.get(str(cp)), rust))
    assert not bad, describe(bad)


def test_sample_covers_every_kind_of_answer():
    """The probes above would be vacuous if the sample never hit a class; check it hits them all."""
    assert {lookup(TABLES["clean_text_runs"], cp) for cp in SAMPLE} == {KEEP, REMOVE, SPACE}
    assert {lookup(TABLES["split_runs"], cp) for cp in SAMPLE} == {WORD, ISOLATE, SEPARATOR}
    for key, table in TABLES["mappings"].items():
        hits = [cp for cp in SAMPLE if str(cp) in table]
        assert len(hits) > 100, key
    # Some mappings delete the character (combining accents) or expand it (e.g. U+0130 lower-cases to 2).
    assert TABLES["mappings"]["strip_accents"][str(0x0301)] == []
    assert TABLES["mappings"]["lowercase"][str(0x0130)] == [0x69, 0x307]
