"""kbert.data.readers: CSV/TSV/JSON-lines/list readers, header detection, and every error with its file:line."""

import math
import re

import numpy as np
import pytest

from kbert.data.examples import RawExample
from kbert.data.readers import examples_from_lists, read_examples
from kbert.errors import DataError


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))  # byte-exact: keep \r\n as written
    return path


def triples(examples):
    return [(ex.text, ex.text_pair, ex.label) for ex in examples]


def lines(examples):
    return [int(ex.where.rsplit(":", 1)[1]) for ex in examples]


def raises(message):
    return pytest.raises(DataError, match=re.escape(message))


# --- CSV / TSV: columns and headers -----------------------------------------------------------
def test_csv_with_header_defaults_and_where(tmp_path):
    path = write(tmp_path, "train.csv", "sentence,label\ngood,positive\nbad,negative\n")
    examples = read_examples(path)
    assert triples(examples) == [("good", None, "positive"), ("bad", None, "negative")]
    assert [ex.where for ex in examples] == [f"{path}:2", f"{path}:3"]


def test_tsv_pairs_from_header_and_extra_columns_ignored(tmp_path):
    path = write(tmp_path, "rte.tsv", "idx\tsentence1\tsentence2\tlabel\n0\ta man\tsomeone\t1\n")
    assert triples(read_examples(path)) == [("a man", "someone", "1")]


def test_header_priority_text_before_sentence_and_label_before_score(tmp_path):
    path = write(tmp_path, "d.csv", "sentence,text,score,label\ns,t,0.5,x\n")
    assert triples(read_examples(path)) == [("t", None, "x")]


def test_header_detection_is_case_insensitive_for_known_names(tmp_path):
    path = write(tmp_path, "d.csv", "Text,Label\nhi,a\n")
    assert triples(read_examples(path)) == [("hi", None, "a")]


def test_named_columns_select_and_disable_pair_guess(tmp_path):
    path = write(tmp_path, "d.csv", "premise,sentence2,gold\np,h,yes\n")
    assert triples(read_examples(path, text_column="premise", label_column="gold")) == [("p", None, "yes")]
    assert triples(read_examples(path, text_column="premise", text_pair_column="sentence2",
                                 label_column=2)) == [("p", "h", "yes")]


def test_named_columns_decide_the_header(tmp_path):
    path = write(tmp_path, "d.csv", "review,stars\nfine,5\n")  # no well-known name: only names make it a header
    assert triples(read_examples(path, text_column="review", label_column="stars")) == [("fine", None, "5")]
    assert triples(read_examples(path)) == [("review", None, "stars"), ("fine", None, "5")]


def test_headerless_layouts_by_width(tmp_path):
    one = write(tmp_path, "one.csv", "just text\nmore text\n")
    two = write(tmp_path, "two.csv", "a,pos\nb,neg\n")
    three = write(tmp_path, "three.csv", "s1,s2,4.5,extra\n")
    assert triples(read_examples(one, label_type="none")) == [("just text", None, None), ("more text", None, None)]
    assert triples(read_examples(two)) == [("a", None, "pos"), ("b", None, "neg")]
    assert triples(read_examples(three, label_type="regression")) == [("s1", "s2", 4.5)]
    assert triples(read_examples(three, label_type="none")) == [("s1", "s2", None)]
    assert lines(read_examples(two)) == [1, 2]


def test_headerless_integer_columns(tmp_path):
    path = write(tmp_path, "d.tsv", "neg\tbad movie\nneg\tawful\n")
    assert triples(read_examples(path, text_column=1, label_column=0)) == [("bad movie", None, "neg"),
                                                                          ("awful", None, "neg")]


def test_explicit_header_flag_overrides_detection(tmp_path):
    path = write(tmp_path, "d.csv", "c1,c2\nx,y\n")
    assert triples(read_examples(path, header=True, text_column=0, label_column=1)) == [("x", None, "y")]
    path = write(tmp_path, "e.csv", "text,label\nx,y\n")
    assert triples(read_examples(path, header=False)) == [("text", None, "label"), ("x", None, "y")]


def test_quoted_fields_with_embedded_newlines_keep_line_numbers(tmp_path):
    content = 'text,label\n"one\nline two\nline three",a\n"say ""hi"", ok",b\nplain,c\n'
    examples = read_examples(write(tmp_path, "q.csv", content))
    assert triples(examples) == [("one\nline two\nline three", None, "a"), ('say "hi", ok', None, "b"),
                                 ("plain", None, "c")]
    assert lines(examples) == [2, 5, 6]


def test_embedded_newline_then_error_names_the_right_line(tmp_path):
    content = 'text,label\n"a\nb\nc",x\nonly-text\n'
    with raises("q.csv:5: expected at least 2 fields (label is column 1), found 1"):
        read_examples(write(tmp_path, "q.csv", content))


def test_bom_crlf_and_blank_lines(tmp_path):
    content = "\ufefftext\tlabel\r\n\r\ngood\tpos\r\n\"multi\r\nline\"\tneg\r\nlast\tpos"
    examples = read_examples(write(tmp_path, "d.tsv", content))
    assert triples(examples) == [("good", None, "pos"), ("multi\r\nline", None, "neg"), ("last", None, "pos")]
    assert lines(examples) == [3, 4, 6]


def test_empty_text_is_valid(tmp_path):
    path = write(tmp_path, "d.csv", "text,text_pair,label\n,,a\n")
    assert triples(read_examples(path)) == [("", "", "a")]


def test_class_labels_are_stripped_strings(tmp_path):
    path = write(tmp_path, "d.tsv", "text\tlabel\nx\t 1 \n")
    assert read_examples(path)[0].label == "1"


def test_multi_label_field_splits_on_separators(tmp_path):
    content = 'text,labels\na,"sports,politics"\nb,sports;news\nc,news | sports|news\nd,\n'
    examples = read_examples(write(tmp_path, "m.csv", content), label_type="multi_label")
    assert [ex.label for ex in examples] == [("sports", "politics"), ("sports", "news"), ("news", "sports"), ()]


def test_regression_csv(tmp_path):
    examples = read_examples(write(tmp_path, "r.csv", "a,b,3.8\nc,d, 1e-1 \n"), label_type="regression")
    assert [ex.label for ex in examples] == [3.8, 0.1]


def test_other_encoding(tmp_path):
    path = write(tmp_path, "l.csv", "text,label\ncaf\xe9,a\n".encode("latin-1"))
    assert read_examples(path, encoding="latin-1")[0].text == "café"


def test_explicit_format_for_txt(tmp_path):
    path = write(tmp_path, "d.txt", "text\tlabel\nx\ty\n")
    assert triples(read_examples(path, format="tsv")) == [("x", None, "y")]


# --- CSV / TSV errors --------------------------------------------------------------------------
@pytest.mark.parametrize("name, content, kwargs, message", [
    ("d.csv", "text,label\na,x\nb\n", {}, "d.csv:3: expected at least 2 fields (label is column 1), found 1"),
    ("d.csv", "sentence,label\ngood,positive\n", {"text_column": "sentense"},
     "d.csv:1: no column 'sentense' in the header ['sentence', 'label']"),
    ("d.csv", "\n\nsentence,lab\ngood,positive\n", {},
     "d.csv:3: no label column in the header ['sentence', 'lab']; expected one of label, score, labels "
     "(or give label_column=)"),
    ("d.csv", "label,idx\nx,1\n", {}, "d.csv:1: no text column in the header ['label', 'idx']"),
    ("d.csv", "a,b\n", {"text_column": "a", "label_column": "b"}, "d.csv: no examples (only a header)"),
    ("d.csv", "a,b\n", {"header": False, "text_column": "a"}, "column 'a' is a name, but header=False"),
    ("d.csv", "just text\n", {}, "d.csv:1: one field per row and no header, so no label column"),
    ("d.csv", "x,y\n", {"text_column": 1}, "d.csv:1: the file has no header; give label_column= too"),
    ("d.csv", "x,y\n", {"label_column": 1}, "d.csv:1: the file has no header; give text_column= too"),
    ("d.csv", "x,y\n", {"text_column": -1, "label_column": 1}, "text column must be a 0-based index >= 0, got -1"),
    ("d.csv", "x,y\n", {"text_column": 0, "label_column": 1.0}, "label column must be a header name or a 0-based"),
    ("d.csv", "x,y\nz,w\n", {"text_column": 0, "label_column": 5}, "d.csv:1: expected at least 6 fields"),
    ("d.csv", "text,label\na,\n", {}, "d.csv:2: empty label"),
    ("d.csv", "text,label\na,x\n\nb,\"never closed\nc,d\n", {},
     "d.csv:4: a quoted field starting on this row is never closed"),
    ("d.csv", 'text,label\na,x\n"quoted" then text,y\n', {}, "d.csv:3: malformed row"),
    ("r.csv", "a,b,3.5\nc,d,high\n", {"label_type": "regression"},
     "r.csv:2: label 'high' is not a number (a regression label)"),
    ("r.csv", "a,b,3.5\nc,d,nan\n", {"label_type": "regression"}, "r.csv:2: label 'nan' is not a finite number"),
    ("r.csv", "a,b,inf\n", {"label_type": "regression"}, "r.csv:1: label 'inf' is not a finite number"),
    ("d.csv", "", {}, "d.csv: no examples (the file is empty)"),
    ("d.csv", "\n \n", {}, "d.csv: no examples (the file is empty)"),
    ("d.tsv", "text\tlabel\n\n", {}, "d.tsv: no examples (only a header)"),
])
def test_csv_errors(tmp_path, name, content, kwargs, message):
    with raises(message):
        read_examples(write(tmp_path, name, content), **kwargs)


def test_not_utf8_names_line_and_byte(tmp_path):
    path = write(tmp_path, "d.csv", b"text,label\ngood,a\nbad \xff,b\n")
    with raises(f"{path}:3: not UTF-8 (byte 4 of the line)"):
        read_examples(path)


def test_not_utf8_inside_a_multiline_field(tmp_path):
    path = write(tmp_path, "d.csv", b'text,label\n"a\nb\xc3(",x\n')
    with raises(f"{path}:3: not UTF-8 (byte 1 of the line)"):
        read_examples(path)


# --- files and formats -------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs, message", [
    ("d.txt", {}, "d.txt: a .txt file could hold any format; give it with format= (one of csv, jsonl, tsv)"),
    ("d.xml", {}, "d.xml: cannot tell the format from extension '.xml' (recognised extensions: .csv, .tsv, .jsonl, "
                  ".json); give it with format= (one of csv, jsonl, tsv)"),
    ("data", {}, "data: cannot tell the format from no extension"),
    ("d.csv", {"format": "parquet"}, "unknown data format 'parquet'; expected one of csv, jsonl, tsv"),
    ("d.csv", {"label_type": "ordinal"}, "unknown label type 'ordinal'; expected one of class, multi_label"),
    ("d.csv", {"encoding": "klingon"}, "unknown text encoding 'klingon'"),
])
def test_format_and_option_errors(tmp_path, name, kwargs, message):
    with raises(message):
        read_examples(write(tmp_path, name, "text,label\nx,y\n"), **kwargs)


def test_missing_file_and_directory(tmp_path):
    with raises(f"{tmp_path / 'nope.csv'}: no such file"):
        read_examples(tmp_path / "nope.csv")
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with raises(f"{folder}: is a directory"):
        read_examples(folder)


# --- JSON lines --------------------------------------------------------------------------------
def test_jsonl_labels_of_every_type(tmp_path):
    content = ('{"text": "a", "label": "pos"}\n\n{"text": "b", "text_pair": "c", "label": 1, "id": 7}\r\n'
               '{"text": "", "text_pair": null, "label": "neg"}\n')
    examples = read_examples(write(tmp_path, "d.jsonl", content))
    assert triples(examples) == [("a", None, "pos"), ("b", "c", "1"), ("", None, "neg")]
    assert lines(examples) == [1, 3, 4]


def test_jsonl_multi_label_regression_and_none(tmp_path):
    path = write(tmp_path, "d.json", '{"text": "a", "label": ["x", 2, "x"]}\n{"text": "b", "label": "y|z"}\n')
    assert [ex.label for ex in read_examples(path, label_type="multi_label")] == [("x", "2"), ("y", "z")]
    path = write(tmp_path, "r.jsonl", '{"text": "a", "label": 3}\n{"text": "b", "label": "0.25"}\n')
    assert [ex.label for ex in read_examples(path, label_type="regression")] == [3.0, 0.25]
    path = write(tmp_path, "n.jsonl", '{"text": "a"}\n')
    assert triples(read_examples(path, label_type="none")) == [("a", None, None)]


def test_jsonl_remapped_fields(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"premise": "p", "hypothesis": "h", "gold": "e"}\n')
    examples = read_examples(path, text_column="premise", text_pair_column="hypothesis", label_column="gold")
    assert triples(examples) == [("p", "h", "e")]


@pytest.mark.parametrize("content, kwargs, message", [
    ('{"text": "a", "label": "x"}\n{"text": "b", "label": "x"\n', {}, "d.jsonl:2: not valid JSON (Expecting ','"),
    ('[{"text": "a"}]\n', {}, "d.jsonl:1: expected a JSON object, got list (a JSON array of objects is not JSON"),
    ('{"text": "a", "label": "x"}\n\n["b", "x"]\n', {}, "d.jsonl:3: expected a JSON object, got list"),
    ('{"sentence": "a", "label": "x"}\n', {}, "d.jsonl:1: no 'text' field (fields: sentence, label)"),
    ('{"text": 5, "label": "x"}\n', {}, "d.jsonl:1: 'text' must be a string, got int"),
    ('{"text": "a", "text_pair": ["b"], "label": "x"}\n', {}, "d.jsonl:1: 'text_pair' must be a string, got list"),
    ('{"text": "a", "label": "x"}\n', {"text_pair_column": "hyp"}, "d.jsonl:1: no 'hyp' field"),
    ('{"text": "a"}\n', {}, "d.jsonl:1: no 'label' field (fields: text); pass label_type='none'"),
    ('{"text": "a", "label": null}\n', {}, "d.jsonl:1: missing label"),
    ('{"text": "a", "label": 0.5}\n', {}, "d.jsonl:1: a class label must be a string or an integer, got 0.5 "
                                          "(use label_type='regression' for scores)"),
    ('{"text": "a", "label": true}\n', {}, "d.jsonl:1: a class label must be a string or an integer, got True"),
    ('{"text": "a", "label": ["x"]}\n', {}, "(use label_type='multi_label' for lists)"),
    ('{"text": "a", "label": {"x": 1}}\n', {"label_type": "multi_label"},
     "d.jsonl:1: a multi_label label must be a list"),
    ('{"text": "a", "label": [""]}\n', {"label_type": "multi_label"}, "d.jsonl:1: empty label"),
    ('{"text": "a", "label": "x"}\n', {"label_type": "regression"}, "d.jsonl:1: label 'x' is not a number"),
    ('{"text": "a", "label": NaN}\n', {"label_type": "regression"}, "d.jsonl:1: label nan is not a finite number"),
    ('{"text": "a", "label": false}\n', {"label_type": "regression"}, "d.jsonl:1: label False is not a number"),
    ('{"text": "a", "label": "x"}\n', {"text_column": 0}, "JSON lines fields are named; the text column must be a name"),
    ("\n\n", {}, "d.jsonl: no examples (the file is empty)"),
])
def test_jsonl_errors(tmp_path, content, kwargs, message):
    with raises(message):
        read_examples(write(tmp_path, "d.jsonl", content), **kwargs)


def test_jsonl_array_gets_a_hint(tmp_path):
    with raises("a JSON array is not JSON lines"):
        read_examples(write(tmp_path, "d.json", '[\n{"text": "a"}\n]\n'))


def test_jsonl_not_utf8(tmp_path):
    with raises("d.jsonl:2: not UTF-8"):
        read_examples(write(tmp_path, "d.jsonl", b'{"text": "a", "label": "x"}\n{"text": "\xe9"}\n'))


# --- lists -------------------------------------------------------------------------------------
def test_examples_from_lists():
    examples = examples_from_lists(["a", "b"], ["pos", 1], text_pairs=["c", None])
    assert examples == [RawExample("a", "c", "pos", "list[0]"), RawExample("b", None, "1", "list[1]")]
    assert [ex.label for ex in examples_from_lists(["a"])] == [None]
    assert examples_from_lists(("a",), [3], label_type="none")[0].label is None


def test_examples_from_lists_accepts_numpy():
    examples = examples_from_lists(np.array(["a", "b"]), np.array([0.5, 2.0], dtype=np.float32),
                                   label_type="regression")
    assert [(ex.text, ex.label) for ex in examples] == [("a", 0.5), ("b", 2.0)]
    assert type(examples[0].text) is str and type(examples[0].label) is float
    assert examples_from_lists(["a"], np.array([3]))[0].label == "3"


@pytest.mark.parametrize("args, kwargs, message", [
    (("a b",), {}, "texts must be a list, got str"),
    ((["a", 3],), {}, "list[1]: text must be a string, got int"),
    ((["a", "b"], ["x"]), {}, "labels has 1 items but texts has 2"),
    ((["a"],), {"text_pairs": ["x", "y"]}, "text_pairs has 2 items but texts has 1"),
    ((["a"],), {"text_pairs": [1]}, "list[0]: text pair must be a string, got int"),
    ((["a", "b"], ["x", None]), {}, "list[1]: missing label"),
    ((["a"], [math.inf]), {"label_type": "regression"}, "list[0]: label inf is not a finite number"),
    ((["a"], ["x"]), {"label_type": "multiclass"}, "unknown label type 'multiclass'"),
    (([],), {}, "texts is empty: no examples"),
])
def test_examples_from_lists_errors(args, kwargs, message):
    with raises(message):
        examples_from_lists(*args, **kwargs)


# --- the real data in ../shared/data -----------------------------------------------------------
def test_real_sst2(shared_data):
    examples = read_examples(shared_data / "sst2" / "train.tsv")
    assert len(examples) == 67_349 and {ex.label for ex in examples} == {"0", "1"}
    assert triples(examples[:2]) == [("hide new secretions from the parental units ", None, "0"),
                                     ("contains no wit , only labored gags ", None, "0")]
    assert examples[0].where.endswith("sst2/train.tsv:2") and examples[-1].where.endswith(":67350")


def test_real_stsb_headerless_regression(shared_data):
    examples = read_examples(shared_data / "stsb" / "stsb-en-train.csv", label_type="regression")
    assert len(examples) == 5_749 and lines(examples[:2]) == [1, 2]
    assert triples(examples[:1]) == [("A plane is taking off.", "An air plane is taking off.", 5.0)]
    assert all(0.0 <= ex.label <= 5.0 for ex in examples)
    assert any("," in ex.text_pair for ex in examples)  # quoted commas stay inside the field


def test_real_rte_pairs_with_quotes(shared_data):
    examples = read_examples(shared_data / "rte" / "train.tsv")
    assert len(examples) == 2_490 and {ex.label for ex in examples} == {"0", "1"}
    assert examples[0].text == "No Weapons of Mass Destruction Found in Iraq Yet."
    assert examples[0].text_pair == "Weapons of Mass Destruction Found in Iraq." and examples[0].label == "1"
    assert lines(examples) == list(range(2, 2_492))  # one physical line per row
    assert any('"extensive"' in ex.text for ex in examples)  # "" inside a quoted TSV field is one quote
