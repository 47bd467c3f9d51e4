"""Fixtures shared by the micrograd hidden tests, written with grader.testing (see its docstring)."""
import pytest
from answers import questions as micrograd_questions
from inputs import upstream_gradient
from pinpoint import operation_feedback, pinpoint_operation

from grader.testing import (BOOLEAN, INDEX, NUMBER, AnyOf, Feedback, Integer, ListOf, Nullable, Record, Text, all_close,
                            close, numbers)

# Every command's reply (reference/micrograd/harness.py), checked before a test sees it.
NEURON = Record({"inputs": Integer(0, 10_000_000), "nonlin": BOOLEAN})
PER_NEURON = ListOf(Record({"w": numbers(10_000), "b": NUMBER}), 10_000)
LOSS = Record({"data": NUMBER, "grads": numbers(10_000)})
TRACE_ENTRY = Record({"op": Text(40), "data": NUMBER, "grad": NUMBER,
                      "children": ListOf(Record({"data": NUMBER, "before": NUMBER, "after": NUMBER}), 8)})

REPLIES = {
    "op": Record({"data": NUMBER, "grads": numbers(2)}),
    "graph": Record({"data": numbers(1000), "grads": numbers(1000), "trace": Nullable(ListOf(TRACE_ENTRY, 500))}),
    "dag": Record({"grads": numbers(100_000), "calls": ListOf(INDEX, 10_000)}),
    "model_structure": Record({
        "structure": AnyOf((NEURON, ListOf(NEURON, 10_000), ListOf(ListOf(NEURON, 10_000), 1000))),
        "count": Integer(0, 10_000_000), "distinct": Integer(0, 10_000_000),
        "order": ListOf(ListOf(Integer(-1, 10_000_000), 2, minimum=2), 100_000),
    }, optional=frozenset({"count", "distinct", "order"})),
    "model_forward": Record({"single": BOOLEAN, "out": numbers(10_000), "param_grads": PER_NEURON,
                             "x_grads": numbers(10_000)}),
    "zero_grad": Record({"grads": PER_NEURON, "data_kept": BOOLEAN}),
    "mse_loss": LOSS,
    "l2_penalty": LOSS,
    "sgd_step": ListOf(ListOf(NUMBER, 2, minimum=2), 10_000),
    "train": Record({"losses": numbers(100_000), "params": numbers(10_000)}),
}


@pytest.fixture(scope="session")
def reply_shapes():
    return REPLIES


@pytest.fixture(scope="session")
def questions(reference_modules):
    return micrograd_questions(reference_modules["engine"].Value)


@pytest.fixture(scope="session")
def on_any_engine(fallback):
    """A function of a check: it passes when the check passes over the student's engine or the course engine
    (the skeleton's public forward code, with backward() answered by the grader), so that an engine bug costs
    points in ops/backprop only."""
    return fallback("course-engine").check


# The upstream gradient (out.grad) of the deterministic cases: never 1 or -1, so that forgetting `* out.grad`
# or its sign always shows; the cases alternate between the two.
FIXED_UPSTREAMS = (1.75, -0.6)


@pytest.fixture
def check_operation(student, reference, rng):
    """Call one operation's `_backward` directly on several inputs and compare with the reference.

    `cases` are deterministic: each gets a fixed upstream gradient (FIXED_UPSTREAMS in turn); `random_cases` are
    extra cases with a random upstream gradient, checked after them."""

    def check(op, cases, exponent=None, same=False, pregrads=None, random_cases=()):
        upstreams = [FIXED_UPSTREAMS[i % len(FIXED_UPSTREAMS)] for i in range(len(cases))]
        upstreams += [upstream_gradient(rng) for _ in random_cases]
        for inputs, upstream in zip(list(cases) + list(random_cases), upstreams):
            args = {
                "op": op, "inputs": inputs, "upstream": upstream, "exponent": exponent, "same": same,
                "pregrads": pregrads if pregrads is not None else [0.0] * len(inputs),
            }
            got, want = student.call_beside(reference, "op", **args)
            problem = operation_feedback(op, inputs, args["upstream"], want, got["data"], got["grads"],
                                         pregrads=args["pregrads"], exponent=exponent)
            if problem is not None:
                raise problem

    return check


@pytest.fixture
def check_graph(student, reference, rng):
    """Build a graph with the student's operations, backpropagate in a trusted order, compare every node.

    The upstream gradient is `upstream` when given (deterministic cases), else random."""

    def check(nodes, function, description, upstream=None):
        upstream = upstream_gradient(rng) if upstream is None else upstream
        got, want = student.call_beside(reference, "graph", nodes=nodes, upstream=upstream)
        if all_close(got["data"], want["data"]) and all_close(got["grads"], want["grads"]):
            return
        pinpointed = pinpoint_operation(got["trace"], reference)
        if pinpointed is not None:
            raise pinpointed
        node = next(i for i in range(len(nodes)) if not (close(got["data"][i], want["data"][i])
                                                          and close(got["grads"][i], want["grads"][i])))
        raise Feedback("graph_wrong", function=function, graph=description, node=node,
                       expected=[want["data"][node], want["grads"][node]],
                       got=[got["data"][node], got["grads"][node]])

    return check
