"""Pinpointing: which operation's `_backward` is wrong, from one request or from a whole graph's trace."""
from grader.testing import Feedback, WrongType, all_close, close, fmt

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


def describe_inputs(op: str, inputs: list[float], exponent: float | None = None) -> str:
    if op == "**":
        return f"x = {fmt(inputs[0])}, n = {fmt(exponent)}"
    if len(inputs) == 1:
        if op in ("+", "*"):
            return f"x = {fmt(inputs[0])} on both sides (x {op} x)"
        return f"x = {fmt(inputs[0])}"
    return ", ".join(f"{name} = {fmt(v)}" for name, v in zip("ab", inputs))


def operation_feedback(op: str, inputs: list[float], upstream: float, want: dict, got_data: float,
                       got_grads: list[float], pregrads: list[float] | None = None,
                       exponent: float | None = None) -> Feedback | None:
    """Compare one operation's forward value and backward contributions; None when they agree."""
    function, name = OP_BY_REQUEST[op]
    where = describe_inputs(op, inputs, exponent)
    names = ["x"] if len(inputs) == 1 else ["a", "b"]

    def grads(values: list[float]) -> str:
        return ", ".join(f"{n}.grad = {fmt(v)}" for n, v in zip(names, values))

    if not close(got_data, want["data"]):
        return Feedback("op_forward_wrong", function=function, op=name, inputs=where,
                        expected=want["data"], got=got_data)
    if not all_close(got_grads, want["grads"]):
        # `=` where `+=` belongs, on any input: the gradient it already held is lost.
        lost = [bool(p) and close(g, w - p) for g, w, p in zip(got_grads, want["grads"], pregrads or [])]
        if any(lost) and all(lost_i or close(g, w) for lost_i, g, w in zip(lost, got_grads, want["grads"])):
            assert pregrads is not None  # `lost` is all False without them
            return Feedback("op_backward_overwrites", function=function, op=name, inputs=where,
                            upstream=upstream, before=grads(pregrads), expected=grads(want["grads"]),
                            got=grads(got_grads))
        return Feedback("op_backward_wrong", function=function, op=name, inputs=where, upstream=upstream,
                        expected=grads(want["grads"]), got=grads(got_grads))
    return None


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
