"""EagerThenTraced: eager calls until the budget is spent, then one trace; graphs always use the trace."""

import doctest
import logging

import tensorflow as tf

from kbert.tokenizer import tracing
from kbert.tokenizer.tracing import EagerThenTraced, TracedOnFirstUse


class Counting:
    """A string function that counts how often its Python body runs (once per eager call, once per trace)."""

    def __init__(self):
        self.runs = 0

    def __call__(self, texts):
        self.runs += 1
        return tf.strings.length(texts)


def test_docstring_examples_run():
    assert doctest.testmod(tracing).failed == 0


def test_eager_calls_until_the_budget_is_spent_then_one_trace():
    fn = Counting()
    runner = EagerThenTraced(fn, budget_seconds=3600.0)
    for _ in range(3):
        assert runner(tf.constant(["ab", "c"])).numpy().tolist() == [2, 1]
    assert fn.runs == 3 and not runner.traced and runner.eager_seconds > 0
    runner.budget_seconds = 0.0
    for _ in range(3):
        assert runner(tf.constant(["abcd"])).numpy().tolist() == [4]
    assert runner.traced and fn.runs == 4  # traced once, then reused for every shape


def test_large_calls_go_to_the_trace_at_once():
    fn = Counting()
    runner = EagerThenTraced(fn, budget_seconds=3600.0, max_eager_rows=2)
    assert runner(tf.constant(["a", "bb"])).numpy().tolist() == [1, 2] and not runner.traced
    assert runner(tf.constant(["a", "bb", "ccc"])).numpy().tolist() == [1, 2, 3] and runner.traced


def test_inside_a_graph_the_one_trace_is_used():
    fn = Counting()
    runner = EagerThenTraced(fn, budget_seconds=3600.0)
    outer = tf.function(lambda t: runner(t) * 2, input_signature=[tf.TensorSpec([None], tf.string)])
    assert outer(tf.constant(["abc"])).numpy().tolist() == [6]
    assert runner.traced
    again = TracedOnFirstUse(fn)
    assert not again.traced and again(tf.constant(["xy"])).numpy().tolist() == [2] and again.traced


def test_functions_of_one_code_are_counted_apart():
    # TensorFlow's retracing warning counts traces per code object: six functions of one lambda, each traced
    # once (as six pipelines' tokenizers are), must not look like one function retraced six times
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    tf.get_logger().addHandler(handler)
    try:
        for _ in range(6):
            runner = TracedOnFirstUse(lambda t: tf.strings.length(t))
            runner(tf.constant(["abc"]))
            runner(tf.constant(["a", "bb"]))
            assert runner.function.experimental_get_tracing_count() == 1
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [m for m in messages if "retracing" in m]
