"""The grader's answers to what a sandbox asks in the middle of a request.

The harness holds no solution logic (docs/architecture.md), so two things it needs come from here:

* "order": an order in which to call a graph's `_backward` closures (each node before the nodes it was
  computed from), for the trusted backpropagation that judges the student's closures;
* "backward": on the course engine (the public forward code, run for nn/train tests when the student's engine
  is broken), every node's gradient after backpropagation, computed here with the reference.

A request may ask only what its test needs (`Questions`); everything else is refused. Questions are typed and
bounded like replies (grader/replies.py), and the work spent answering them is budgeted per submission.
"""
from __future__ import annotations

from typing import Any, Callable

from grader.replies import INDEX, NUMBER, BadReply, ListOf, Record, Text, check

MAX_NODES = 100_000  # per question (the harness's own cap, harness.MAX_GRAPH_NODES)
BUDGET_NODES = 1_000_000  # per sandbox: every node of every question answered, together
ORDER = Record({"ask": Text(20), "children": ListOf(ListOf(INDEX, 64), MAX_NODES, minimum=1)})
BACKWARD = Record({"ask": Text(20), "root_grad": NUMBER, "nodes": ListOf(
    Record({"op": Text(40), "data": NUMBER, "grad": NUMBER, "children": ListOf(INDEX, 64)}), MAX_NODES, minimum=1)})

# Which question each request may ask: the student's engine needs orders for the trusted backward of these;
# the course engine needs gradients wherever backward() runs.
ORDER_REQUESTS = frozenset({"graph", "model_forward", "mse_loss", "l2_penalty"})


class Refused(Exception):
    """A question the grader does not answer; the message (the grader's words) goes back to the harness."""


def backprop_order(children: list[list[int]]) -> list[int]:
    """Node indices, each before every node it was computed from (root, index 0, first); Refused on a cycle."""
    count = len(children)
    parents = [0] * count
    for kids in children:
        for kid in kids:
            if kid >= count:
                raise Refused("a node refers to a node that is not in the graph")
            parents[kid] += 1
    ready = [i for i in range(count) if parents[i] == 0]
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for kid in children[node]:
            parents[kid] -= 1
            if parents[kid] == 0:
                ready.append(kid)
    if len(order) != count:
        raise Refused("the graph has a cycle")
    return order


def course_gradients(value_class: type, nodes: list[dict], root_grad: float) -> list[float]:
    """Each node's gradient after backward() from nodes[0], on a copy of the graph built with the reference.

    Nodes come as the harness saw them ({"op", "data", "grad", "children"}); gradients held before count,
    as they do in the real engine (a student who forgets zero_grad sees them accumulate)."""
    edges = [n["children"] for n in nodes]
    order = backprop_order(edges)
    built: list[Any] = [None] * len(nodes)
    for i in reversed(order):  # inputs before the nodes made from them
        built[i] = rebuild(value_class, nodes[i], [built[j] for j in edges[i]])
        built[i].grad = nodes[i]["grad"]
    built[0].grad = root_grad
    for i in order:
        built[i]._backward()
    return [float(v.grad) for v in built]


UNARY = {"exp": "exp", "log": "log", "ReLU": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}


def rebuild(value_class: type, node: dict, children: list) -> Any:
    """The reference's Value for one node of the course engine's graph, from its operation's label."""
    op = node["op"]
    try:
        if not children:
            return value_class(node["data"])
        if op in ("+", "*") and len(children) in (1, 2):
            a, b = children[0], children[-1]  # one child: the same value on both sides (x + x)
            return a + b if op == "+" else a * b
        if op in UNARY and len(children) == 1:
            return getattr(children[0], UNARY[op])()
        if op.startswith("**") and len(children) == 1:
            exponent = float(op[2:])
            return children[0] ** (int(exponent) if exponent.is_integer() else exponent)
    except (ArithmeticError, ValueError, TypeError):
        raise Refused(f"the course engine cannot compute {op!r} here") from None
    raise Refused(f"the course engine has no operation {op!r} with {len(children)} inputs")


class Questions:
    """Answers the questions of one sandbox, within a budget of nodes for the whole submission."""

    def __init__(self, value_class: type, course_engine: bool):
        self.value_class = value_class
        self.course_engine = course_engine
        self.nodes_left = BUDGET_NODES

    def for_request(self, cmd: str) -> Callable[[dict], dict] | None:
        """What a request `cmd` may ask, as a function of the question; None when it may ask nothing."""
        if self.course_engine:
            return self.answer_backward
        return self.answer_order if cmd in ORDER_REQUESTS else None

    def _spend(self, nodes: int) -> None:
        if nodes > self.nodes_left:
            raise Refused("the submission has used up the grader's budget for such questions")
        self.nodes_left -= nodes

    def answer_order(self, question: dict) -> dict:
        asked = _typed(question, ORDER)
        self._spend(len(asked["children"]))
        return {"order": backprop_order(asked["children"])}

    def answer_backward(self, question: dict) -> dict:
        asked = _typed(question, BACKWARD)
        self._spend(len(asked["nodes"]))
        return {"grads": course_gradients(self.value_class, asked["nodes"], asked["root_grad"])}


def _typed(question: dict, shape: Record) -> dict:
    try:
        typed: dict = check(question, shape)
    except BadReply as bad:
        raise Refused(f"malformed question: {bad}") from None
    return typed


def in_process_ask(kind: str, **payload: Any) -> dict:
    """`ask` for the reference run in the grader's own process: only orders are asked there."""
    if kind != "order":
        raise Refused(f"the reference does not ask {kind!r}")
    return {"order": backprop_order(payload["children"])}
