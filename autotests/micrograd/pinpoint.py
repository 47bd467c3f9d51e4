"""Pinpointing: which operation's `_backward` is wrong, from one request or from a whole graph's trace."""
import diagnosis

from grader.testing import Feedback, WrongType

# _op label -> (harness op, function name, how students call it)
OPERATIONS = {
    "+": ("+", "Value.__add__", "add (__add__)"),
    "*": ("*", "Value.__mul__", "mul (__mul__)"),
    "exp": ("exp", "Value.exp", "exp"),
    "log": ("log", "Value.log", "log"),
    "ReLU": ("relu", "Value.relu", "relu"),
    "tanh": ("tanh", "Value.tanh", "tanh"),
    "sigmoid": ("sigmoid", "Value.sigmoid", "sigmoid"),
}
OP_BY_REQUEST = {request: (function, name) for request, function, name in OPERATIONS.values()}
OP_BY_REQUEST["**"] = ("Value.__pow__", "pow (__pow__)")


def parse_op_label(label: str) -> tuple[str, float | None] | None:
    """The harness op of a node's `_op` label, and the exponent for '**k'; None for unknown labels."""
    if label in OPERATIONS:
        return OPERATIONS[label][0], None
    if label.startswith("**"):
        try:
            return "**", float(label[2:])
        except ValueError:
            return None
    return None


def operation_feedback(op: str, inputs: list[float], upstream: float, want: dict, got_data: float,
                       got_grads: list[float], pregrads: list[float] | None = None,
                       exponent: float | None = None) -> Feedback | None:
    """Compare one operation's forward value and backward contributions; None when they agree."""
    function, name = OP_BY_REQUEST[op]
    found = diagnosis.operation(op, name, inputs, upstream, want["data"], want["grads"], got_data, got_grads,
                                pregrads=pregrads, exponent=exponent)
    return None if found is None else Feedback(found["id"], function=function, **found["params"])


def pinpoint_operation(trace: list[dict], reference) -> Feedback | None:
    """The first node, in backward order, whose `_backward` added the wrong amount to its inputs."""
    for node in trace:
        parsed = parse_op_label(node["op"])
        if parsed is None:
            continue
        op, exponent = parsed
        inputs = [c["data"] for c in node["children"]]
        if op in ("+", "*") and len(inputs) not in (1, 2) or op not in ("+", "*") and len(inputs) != 1:
            continue
        before = [c["before"] for c in node["children"]]
        try:  # the inputs are the student's numbers: the reference may refuse them (log of -1)
            want = reference.call("op", op=op, inputs=inputs, upstream=node["grad"], pregrads=before,
                                  exponent=exponent, same=len(inputs) == 1 and op in ("+", "*"))
        except (ArithmeticError, ValueError, TypeError, WrongType):
            continue
        found = operation_feedback(op, inputs, node["grad"], want, node["data"],
                                   [c["after"] for c in node["children"]], pregrads=before, exponent=exponent)
        if found is not None:
            return found
    return None
