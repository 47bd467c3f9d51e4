"""Fixtures shared by the hidden tests. `student`, `correct_engine`, `on_any_engine`, `reference` and `rng` come from
grader/runner.py."""
import pytest

from autotests.inputs import upstream_gradient

from grader.compare import Feedback, all_close, close, operation_feedback, pinpoint_operation


@pytest.fixture
def check_operation(student, reference, rng):
    """Call one operation's `_backward` directly on several inputs and compare with the reference."""

    def check(op, cases, exponent=None, same=False, pregrads=None):
        for inputs in cases:
            args = {
                "op": op, "inputs": inputs, "upstream": upstream_gradient(rng), "exponent": exponent, "same": same,
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
    """Build a graph with the student's operations, backpropagate in a trusted order, compare every node."""

    def check(nodes, function, description):
        upstream = upstream_gradient(rng)
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
