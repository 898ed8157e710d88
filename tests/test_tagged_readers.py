"""kbert.tasks.token_classification.tagged_files: CoNLL / CoNLL-U / JSON-lines / list readers for token classification, errors with file:line."""

import json
import re

import pytest

from kbert.data.labels import LabelSet, sort_names
from kbert.tasks.token_classification.tagged_files import TAGGED_EXTENSIONS, TaggedSentence, read_tagged, tagged_from_lists
from kbert.errors import DataError

UD_UPOS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
           "SCONJ", "SYM", "VERB", "X"}


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))  # keep \r\n as written
    return path


def pairs(sentences):
    return [(s.words, s.tags) for s in sentences]


def lines(sentences):
    return [int(s.where.rsplit(":", 1)[1]) for s in sentences]


def raises(message):
    return pytest.raises(DataError, match=re.escape(message))


def conllu_line(i, form, upos="NOUN", xpos="NN"):
    return f"{i}\t{form}\t{form.lower()}\t{upos}\t{xpos}\t_\t0\troot\t0:root\t_\n"


# --- CoNLL -------------------------------------------------------------------------------------
def test_conll_tab_separated_two_columns(tmp_path):
    path = write(tmp_path, "wnut.conll", "@paul\tO\nEmpire\tB-location\nState\tI-location\n\nhi\tO\n")
    sentences = read_tagged(path)
    assert pairs(sentences) == [(("@paul", "Empire", "State"), ("O", "B-location", "I-location")), (("hi",), ("O",))]
    assert [s.where for s in sentences] == [f"{path}:1", f"{path}:5"]
    assert all(isinstance(s, TaggedSentence) for s in sentences)


def test_conll2003_spaces_docstart_and_last_column(tmp_path):
    content = ("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
               "-DOCSTART- -X- -X- O\n\nPeter  NNP   B-NP B-PER\n")
    path = write(tmp_path, "eng.train.bio", content)
    sentences = read_tagged(path)
    assert pairs(sentences) == [(("EU", "rejects"), ("B-ORG", "O")), (("Peter",), ("B-PER",))]
    assert lines(sentences) == [3, 8]
    assert [s.tags for s in read_tagged(path, tag_column=1)] == [("NNP", "VBZ"), ("NNP",)]
    assert [s.tags for s in read_tagged(path, tag_column=-2)] == [("B-NP", "B-VP"), ("B-NP",)]
    assert [s.tags for s in read_tagged(path, tag_column=3)] == [("B-ORG", "O"), ("B-PER",)]


def test_conll_docstart_without_blank_line_still_ends_the_sentence(tmp_path):
    path = write(tmp_path, "d.conll", "a O\n-DOCSTART- O\nb O\n")
    assert pairs(read_tagged(path)) == [(("a",), ("O",)), (("b",), ("O",))]


def test_conll_whitespace_only_and_consecutive_blank_lines_separate_without_empty_sentences(tmp_path):
    # WNUT-17 train separates sentences with a line holding one tab.
    path = write(tmp_path, "d.conll", "\n\t\na\tO\n\t\n  \n\n\nb\tB-x\nc\tI-x\n \t \n\n")
    sentences = read_tagged(path)
    assert pairs(sentences) == [(("a",), ("O",)), (("b", "c"), ("B-x", "I-x"))]
    assert lines(sentences) == [3, 8]


def test_conll_crlf_and_bom(tmp_path):
    path = write(tmp_path, "d.conll", b"\xef\xbb\xbfParis\tB-LOC\r\nis\tO\r\n\r\nok\tO\r\n")
    sentences = read_tagged(path)
    assert pairs(sentences) == [(("Paris", "is"), ("B-LOC", "O")), (("ok",), ("O",))]
    assert lines(sentences) == [1, 4]


def test_conll_unlabelled_accepts_one_column(tmp_path):
    path = write(tmp_path, "d.conll", "Paris\nis\n\nnice O\n")
    sentences = read_tagged(path, labelled=False)
    assert pairs(sentences) == [(("Paris", "is"), None), (("nice",), None)]


def test_conll_tags_kept_exactly_as_written(tmp_path):
    path = write(tmp_path, "d.conll", "a\tB-creative-work\nb\tE-PER\nc\tS-org\nd\t0\n")
    assert read_tagged(path)[0].tags == ("B-creative-work", "E-PER", "S-org", "0")


def test_conll_tab_lines_split_on_tabs_only(tmp_path):
    # With a tab on the line, spaces do not separate columns: "New York" is one (invalid) word, not two columns.
    path = write(tmp_path, "d.conll", "ok\tO\nNew York\tB-LOC\n")
    with raises(f"{path}:2: word 'New York' contains whitespace"):
        read_tagged(path)


def test_conll_errors_name_file_and_line(tmp_path):
    one = write(tmp_path, "one.conll", "a\tO\n\nlonely\n")
    with raises(f"{one}:3: expected a word and a tag separated by a tab or spaces, got 'lonely'"):
        read_tagged(one)
    short = write(tmp_path, "short.conll", "a X O\nb O\n")
    with raises(f"{short}:2: tag_column is 2 but the line has 2 columns"):
        read_tagged(short, tag_column=2)
    with raises(f"{short}:2: tag_column -2 is the word column of this line"):
        read_tagged(short, tag_column=-2)
    empty_word = write(tmp_path, "ew.conll", "a\tO\n\tO\n")
    with raises(f"{empty_word}:2: word is empty"):
        read_tagged(empty_word)
    empty_tag = write(tmp_path, "et.conll", "a\tO\nb\t\tO\n")
    with raises(f"{empty_tag}:2: tag is empty"):
        read_tagged(empty_tag, tag_column=1)
    nbsp = write(tmp_path, "nbsp.conll", "a\u00a0b O\n")
    with raises(f"{nbsp}:1: word 'a\\xa0b' contains whitespace"):
        read_tagged(nbsp)


def test_conll_tag_column_must_be_an_index(tmp_path):
    path = write(tmp_path, "d.conll", "a O\n")
    with raises("a conll file's columns have no names; give tag_column as a 0-based index"):
        read_tagged(path, tag_column="ner")
    with raises("tag_column must be a 0-based column index, got True"):
        read_tagged(path, tag_column=True)
    with raises("tags_key names a JSON field, but a conll file has columns"):
        read_tagged(path, tags_key="ner")


# --- CoNLL-U -----------------------------------------------------------------------------------
CONLLU = ("# newdoc id = d1\n# sent_id = 1\n# text = I can't go.\n"
          + conllu_line(1, "I", "PRON", "PRP")
          + "2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\t_\n"
          + conllu_line(2, "ca", "AUX", "MD") + conllu_line(3, "n't", "PART", "RB")
          + conllu_line(4, "go", "VERB", "VB")
          + "4.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t4:conj\t_\n"
          + conllu_line(5, ".", "PUNCT", ".")
          + "\n# sent_id = 2\n" + conllu_line(1, "Yes", "INTJ", "UH") + "\n")


def test_conllu_upos_skips_comments_multiword_tokens_and_empty_nodes(tmp_path):
    path = write(tmp_path, "ud.conllu", CONLLU)
    sentences = read_tagged(path)
    assert pairs(sentences) == [(("I", "ca", "n't", "go", "."), ("PRON", "AUX", "PART", "VERB", "PUNCT")),
                                (("Yes",), ("INTJ",))]
    assert lines(sentences) == [4, 13]
    assert read_tagged(path, tag_column="upos") == sentences


def test_conllu_xpos_index_unlabelled_crlf_bom(tmp_path):
    path = write(tmp_path, "ud.conllu", b"\xef\xbb\xbf" + CONLLU.replace("\n", "\r\n").encode())
    assert [s.tags for s in read_tagged(path, tag_column="xpos")] == [("PRP", "MD", "RB", "VB", "."), ("UH",)]
    assert [s.tags for s in read_tagged(path, tag_column="XPOS")][1] == ("UH",)
    assert [s.tags for s in read_tagged(path, tag_column=7)][1] == ("root",)  # DEPREL by index
    assert pairs(read_tagged(path, labelled=False))[0] == (("I", "ca", "n't", "go", "."), None)


def test_conllu_errors_name_file_and_line(tmp_path):
    no_xpos = write(tmp_path, "a.conllu", conllu_line(1, "Hi", "INTJ", "UH") + conllu_line(2, "there", "ADV", "_"))
    assert read_tagged(no_xpos)[0].tags == ("INTJ", "ADV")
    with raises(f"{no_xpos}:2: XPOS of 'there' is '_' (no XPOS tag in this file)"):
        read_tagged(no_xpos, tag_column="xpos")
    short = write(tmp_path, "b.conllu", "# c\n" + conllu_line(1, "Hi") + "2\tthere\tthere\tADV\n")
    with raises(f"{short}:3: expected 10 tab-separated fields (CoNLL-U), found 4"):
        read_tagged(short)
    spaces = write(tmp_path, "c.conllu", conllu_line(1, "Hi").replace("\t", "   "))
    with raises(f"{spaces}:1: expected 10 tab-separated fields (CoNLL-U), found 1"):
        read_tagged(spaces)
    bad_id = write(tmp_path, "d.conllu", conllu_line("x", "Hi"))
    with raises(f"{bad_id}:1: ID 'x' is not a word number"):
        read_tagged(bad_id)
    with raises("unknown CoNLL-U tag column 'ner'; expected 'upos', 'xpos' or a 0-based index"):
        read_tagged(no_xpos, tag_column="ner")
    with raises("tag_column 1 is the FORM field, not a tag"):
        read_tagged(no_xpos, tag_column=1)
    with raises("CoNLL-U has 10 fields; tag_column must be an index from 0 to 9, got 10"):
        read_tagged(no_xpos, tag_column=10)
    only_comments = write(tmp_path, "e.conllu", "# sent_id = 1\n\n")
    with raises(f"{only_comments}: no sentences (no word lines)"):
        read_tagged(only_comments)


# --- JSON lines --------------------------------------------------------------------------------
def test_jsonl_default_keys_and_priority(tmp_path):
    rows = [{"tokens": ["EU", "rejects"], "pos_tags": ["NNP", "VBZ"], "ner_tags": ["B-ORG", "O"]},
            {"words": ["Hi"], "labels": ["O"]},
            {"tokens": ["a"], "words": ["b"], "tags": ["X"], "labels": ["Y"]}]
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n")
    sentences = read_tagged(path)
    assert pairs(sentences) == [(("EU", "rejects"), ("B-ORG", "O")), (("Hi",), ("O",)), (("a",), ("X",))]
    assert lines(sentences) == [1, 2, 4]
    with raises(f"{path}:2: no 'pos_tags' field (fields: 'words', 'labels')"):
        read_tagged(path, tags_key="pos_tags")
    last = write(tmp_path, "last.jsonl", json.dumps(rows[1]) + "\n" + json.dumps(rows[2]))  # no final newline
    assert read_tagged(last, words_key="words", tags_key="labels") == [TaggedSentence(("Hi",), ("O",), f"{last}:1"),
                                                                       TaggedSentence(("b",), ("Y",), f"{last}:2")]
    assert [s.tags for s in read_tagged(path, labelled=False)] == [None, None, None]


def test_jsonl_bom_and_crlf(tmp_path):
    path = write(tmp_path, "d.json",
                 b'\xef\xbb\xbf{"tokens": ["x"], "tags": ["O"]}\r\n{"tokens": ["y"], "tags": ["O"]}\r\n')
    assert pairs(read_tagged(path)) == [(("x",), ("O",)), (("y",), ("O",))]


def test_jsonl_errors_name_file_and_line(tmp_path):
    def one(name, second_line, **kwargs):
        path = write(tmp_path, name, '{"tokens": ["ok"], "tags": ["O"]}\n' + second_line + "\n")
        with pytest.raises(DataError) as err:
            read_tagged(path, **kwargs)
        assert str(err.value).startswith(f"{path}:2: "), str(err.value)
        return str(err.value)[len(f"{path}:2: "):]

    assert one("ids.jsonl", '{"tokens": ["a", "b"], "ner_tags": [3, 0]}').startswith(
        "'ner_tags' holds integer tag ids (3, 0); kbert needs tag names, not ids")
    assert one("len.jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}') == "2 words but 1 tags"
    assert one("json.jsonl", '{"tokens": ["a"], "tags": ["O"]').startswith("not valid JSON")
    assert one("obj.jsonl", '[["a"], ["O"]]').startswith("expected a JSON object")
    assert one("space.jsonl", '{"tokens": ["New York"], "tags": ["B-LOC"]}') == (
        "word 0 'New York' contains whitespace; give each word separately")
    assert one("emptyword.jsonl", '{"tokens": ["a", ""], "tags": ["O", "O"]}') == "word 1 is empty"
    assert one("notags.jsonl", '{"tokens": ["a"], "ner": ["O"]}').startswith(
        "no tags field: expected one of 'tags', 'ner_tags', 'pos_tags', 'labels' or give tags_key= "
        "(fields: 'tokens', 'ner')")
    assert one("nowords.jsonl", '{"text": "a b", "tags": ["O"]}').startswith("no words field")
    assert one("key.jsonl", '{"tokens": ["a"], "ner": ["O"]}', tags_key="tags") == (
        "no 'tags' field (fields: 'tokens', 'ner')")
    assert one("str.jsonl", '{"tokens": "a b", "tags": ["O", "O"]}').startswith(
        "'tokens' must be a list, got a string 'a b'")
    assert one("none.jsonl", '{"tokens": ["a"], "tags": [null]}') == "tag 0 must be a string, got NoneType None"
    assert one("emptys.jsonl", '{"tokens": [], "tags": []}').startswith("'tokens' is empty")
    assert one("wstag.jsonl", '{"tokens": ["a"], "tags": ["B PER"]}') == "tag 0 'B PER' contains whitespace"
    path = write(tmp_path, "d.jsonl", '{"tokens": ["a"]}\n')
    assert read_tagged(path, labelled=False)[0].words == ("a",)
    with raises("tag_column picks a column, but a jsonl file has named fields; use tags_key='ner'"):
        read_tagged(path, tag_column="ner")


# --- everywhere --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["d.conll", "d.conllu", "d.jsonl"])
def test_empty_files_are_errors(tmp_path, name):
    path = write(tmp_path, name, "\n \n\t\n")
    with raises(f"{path}: no sentences (the file is empty)"):
        read_tagged(path)


@pytest.mark.parametrize("name", ["d.conll", "d.conllu", "d.jsonl"])
def test_non_utf8_names_the_file_and_line(tmp_path, name):
    path = write(tmp_path, name, b"ok\tO\n\ncaf\xe9\tO\n")
    with raises(f"{path}:3: not UTF-8 (byte 3 of the line)"):
        read_tagged(path)
    assert read_tagged(path, format="conll", encoding="latin-1")[1].words == ("café",)


def test_format_from_extension_and_txt_needs_format(tmp_path):
    assert TAGGED_EXTENSIONS[".conllu"] == "conllu" and TAGGED_EXTENSIONS[".iob"] == "conll"
    path = write(tmp_path, "train.txt", "a O\n")
    with raises(f"{path}: a .txt file could hold any format; give it with format= (one of conll, conllu, jsonl)"):
        read_tagged(path)
    assert pairs(read_tagged(path, format="conll")) == [(("a",), ("O",))]
    other = write(tmp_path, "train.csv", "a O\n")
    with raises(f"{other}: cannot tell the format from extension '.csv'"):
        read_tagged(other)
    with raises("unknown tagged data format 'bio'; expected one of conll, conllu, jsonl"):
        read_tagged(other, format="bio")
    with raises(f"{tmp_path / 'missing.conll'}: no such file"):
        read_tagged(tmp_path / "missing.conll")


# --- lists -------------------------------------------------------------------------------------
def test_tagged_from_lists():
    sentences = tagged_from_lists([["New", "York"], ("is",)], [["B-LOC", "I-LOC"], ["O"]])
    assert sentences == [TaggedSentence(("New", "York"), ("B-LOC", "I-LOC"), "list[0]"),
                         TaggedSentence(("is",), ("O",), "list[1]")]
    assert tagged_from_lists([["a"]])[0].tags is None


def test_tagged_from_lists_errors():
    with raises("tags has 1 sentences but words has 2"):
        tagged_from_lists([["a"], ["b"]], [["O"]])
    with raises("list[1]: 1 words but 2 tags"):
        tagged_from_lists([["a"], ["b"]], [["O"], ["O", "O"]])
    with raises("list[0]: tags holds integer tag ids (1, 2)"):
        tagged_from_lists([["a", "b"]], [[1, 2]])
    with raises("list[0]: words must be a list, got a string 'New'; give each sentence as a list of words"):
        tagged_from_lists(["New", "York"])
    with raises("words must be a list, got a string"):
        tagged_from_lists("New York")
    with raises("list[0]: word 1 'a b' contains whitespace"):
        tagged_from_lists([["x", "a b"]])
    with raises("list[0]: words is empty: a sentence needs at least one word"):
        tagged_from_lists([[]])
    with raises("words is empty: no sentences"):
        tagged_from_lists([])


def test_label_set_from_tagged_sentences():
    sentences = tagged_from_lists([["a", "b"], ["c"]], [["O", "B-PER"], ["I-PER"]])
    labels = LabelSet(sort_names(tag for s in sentences for tag in s.tags))
    assert labels.names == ("B-PER", "I-PER", "O")


# --- real data ---------------------------------------------------------------------------------
def hf_wnut17_reference(path):
    """Sentences as the Hugging Face ``wnut_17`` dataset script builds them (rstrip; a now-empty line ends one)."""
    sentences, words, tags = [], [], []
    for row in path.read_text(encoding="utf-8").splitlines():
        row = row.rstrip()
        if row:
            word, tag = row.split("\t")
            words.append(word)
            tags.append(tag)
        elif words:
            sentences.append((tuple(words), tuple(tags)))
            words, tags = [], []
    if words:
        sentences.append((tuple(words), tuple(tags)))
    return sentences


@pytest.mark.parametrize("name,count,first", [("wnut17train.conll", 3394, "@paulwalk"),
                                              ("emerging.dev.conll", 1009, "Stabilized")])
def test_real_wnut17(shared_data, name, count, first):
    path = shared_data / "wnut17" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    sentences = read_tagged(path)
    assert len(sentences) == count
    assert pairs(sentences) == hf_wnut17_reference(path)
    entities = {"corporation", "creative-work", "group", "location", "person", "product"}
    assert set(sort_names(t for s in sentences for t in s.tags)) == {"O"} | {f"{p}-{e}" for p in "BI" for e in entities}
    assert sentences[0].where == f"{path}:1" and sentences[0].words[0] == first


def test_real_ud_english_ewt_dev(shared_data):
    path = shared_data / "ud_en_ewt" / "en_ewt-ud-dev.conllu"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    sentences = read_tagged(path)
    assert len(sentences) == 2001
    assert {tag for s in sentences for tag in s.tags} == UD_UPOS
    assert sentences[0] == TaggedSentence(("From", "the", "AP", "comes", "this", "story", ":"),
                                          ("ADP", "DET", "PROPN", "VERB", "DET", "NOUN", "PUNCT"), f"{path}:5")
    # Words are the syntactic words (multiword tokens skipped): one per line whose ID is an integer.
    text = path.read_text(encoding="utf-8")
    assert sum(len(s.words) for s in sentences) == len(re.findall(r"^\d+\t", text, flags=re.M))
    xpos = read_tagged(path, tag_column="xpos")
    assert [s.words for s in xpos] == [s.words for s in sentences]
    assert xpos[0].tags == ("IN", "DT", "NNP", "VBZ", "DT", "NN", ":")
