"""What the micrograd harness asks the grader (grader/answers.py): orders for backpropagation, and the gradients
of the course engine. Solution logic, so it lives here with the hidden tests and never enters a sandbox."""
from typing import Any

from grader.testing import INDEX, NUMBER, ListOf, Question, Record, Refused, Text

MAX_NODES = 100_000  # per question (the harness's own cap, MAX_GRAPH_NODES)
ORDER = Record({"children": ListOf(ListOf(INDEX, 64), MAX_NODES, minimum=1)})
BACKWARD = Record({"root_grad": NUMBER, "nodes": ListOf(
    Record({"op": Text(40), "data": NUMBER, "grad": NUMBER, "children": ListOf(INDEX, 64)}), MAX_NODES, minimum=1)})
# The student's engine needs orders for the trusted backward of these requests (never `dag`, where the
# student's backward() is on trial); the course engine needs gradients wherever backward() runs.
ORDER_REQUESTS = frozenset({"graph", "model_forward", "mse_loss", "l2_penalty"})


def questions(value_class: type) -> list[Question]:
    """The questions, answered with the reference engine's `Value`."""
    return [
        Question("order", ORDER, lambda q: {"order": backprop_order(q["children"])}, lambda q: len(q["children"]),
                 requests=ORDER_REQUESTS),
        Question("backward", BACKWARD,
                 lambda q: {"grads": course_gradients(value_class, q["nodes"], q["root_grad"])},
                 lambda q: len(q["nodes"]), variant="course-engine"),
    ]


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
