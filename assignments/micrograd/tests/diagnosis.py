"""Why a result is wrong: the explanations of `grader check` (these public tests) and of the hidden tests alike.

Each function compares what a student's code gave with what was expected and returns the message that says
what is wrong, {"id": ..., "params": ...} (worded in English or Chinese from messages.toml), or None when they
agree. Standard library only, and no solution logic: every expected value comes from the caller.
"""
import math
from collections import Counter

REL_TOL, ABS_TOL = 1e-6, 1e-9


def close(got, want):
    return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def all_close(got, want):
    return len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))


def message(message_id, **params):
    return {"id": message_id, "params": params}


# ---------------------------------------------------------------------- one operation's _backward

def describe_inputs(op, inputs, exponent=None, pregrads=None):
    """The inputs as a student writes them, and the gradients they held before the call when any did."""
    if op == "**":
        described = message("inputs.power", x=inputs[0], n=exponent)
    elif len(inputs) == 1 and op in ("+", "*"):
        described = message("inputs.both_sides", x=inputs[0], op=op)
    elif len(inputs) == 1:
        described = message("inputs.one", x=inputs[0])
    else:
        described = message("inputs.two", a=inputs[0], b=inputs[1])
    if pregrads and any(pregrads):
        return message("inputs.held", inputs=described, held=grads_text(inputs, pregrads))
    return described


def grads_text(inputs, grads):
    names = ["x"] if len(inputs) == 1 else ["a", "b"]
    return ", ".join(f"{n}.grad = {v:.6g}" for n, v in zip(names, grads))


def operation(op, name, inputs, upstream, want_data, want_grads, got_data, got_grads, pregrads=None,
              exponent=None):
    """One operation (`name`, e.g. "tanh") on `inputs`: its forward value and what its `_backward` added to the
    inputs' gradients when called with out.grad = upstream, the inputs holding `pregrads` before the call."""
    pregrads = list(pregrads or [0.0] * len(inputs))
    where = describe_inputs(op, inputs, exponent, pregrads)
    if not close(got_data, want_data):
        return message("op_forward_wrong", op=name, inputs=where, expected=want_data, got=got_data)
    if all_close(got_grads, want_grads):
        return None
    shown = {"op": name, "inputs": where, "upstream": upstream,
             "expected": grads_text(inputs, want_grads), "got": grads_text(inputs, got_grads)}
    # `=` where `+=` belongs: the gradient an input already held is lost, or (x + x, x * x) one of its two
    # contributions is.
    lost = [bool(p) and close(g, w - p) for g, w, p in zip(got_grads, want_grads, pregrads)]
    if any(lost) and all(lost_i or close(g, w) for lost_i, g, w in zip(lost, got_grads, want_grads)):
        return message("op_backward_overwrites", **shown)
    if len(inputs) == 1 and op in ("+", "*") and close(got_grads[0], (want_grads[0] - pregrads[0]) / 2):
        return message("op_backward_overwrites_same", **shown)
    # The local derivative alone, not multiplied by out.grad (the chain rule).
    if upstream not in (0, 1) and all(close(g, p + (w - p) / upstream)
                                      for g, w, p in zip(got_grads, want_grads, pregrads)):
        return message("op_backward_no_upstream", **shown)
    return message("op_backward_wrong", **shown)


# ---------------------------------------------------------------------- backward()

def reachable(nodes):
    seen, stack = set(), [len(nodes) - 1]
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(j for j, _ in nodes[i]["children"])
    return seen


def describe_graph(nodes):
    """The graph as a student would write it, output first: "n4 = f(n2, n3); n3 = f(n1); ..." (n0 a leaf)."""
    parts = [f"n{i} = f({', '.join(f'n{j}' for j, _ in node['children'])})"
             for i, node in reversed(list(enumerate(nodes))) if node["children"]]
    if len(parts) > 6:
        return message("graph.large", count=len(nodes), output=len(nodes) - 1)
    return "; ".join(parts) or message("graph.single")


def backward(nodes, got_grads, want_grads, calls_log, calls=1):
    """backward() called `calls` times on the last of `nodes` (nodes[i] = {"children": [[j, slope], ...]}), whose
    `_backward` closures are known to be right and log their node's index in `calls_log`."""
    if all_close(got_grads, want_grads):
        return None
    root = len(nodes) - 1
    if len(got_grads) != len(nodes):  # only code that tampered with the request can do this
        return message("backward_wrong", node=root, expected=want_grads[root], got=got_grads[-1:])
    if not close(got_grads[root], want_grads[root]):
        return message("backward_seed", expected=want_grads[root], got=got_grads[root])
    wrong = next(i for i in range(len(nodes)) if not close(got_grads[i], want_grads[i]))
    case = {"graph": describe_graph(nodes), "wrong": wrong, "expected": want_grads[wrong], "got": got_grads[wrong]}
    inner = [i for i in reachable(nodes) if nodes[i]["children"]]
    count = Counter(calls_log)
    if any(count[i] == 0 for i in inner):
        return message("backward_skips_nodes", missing=sum(count[i] == 0 for i in inner), total=len(inner), **case)
    if any(count[i] > calls for i in inner):
        node = max(inner, key=lambda i: count[i])
        return message("backward_repeats_nodes", node=node, times=count[node] // calls, **case)
    first_call = {}
    for position, i in enumerate(calls_log):
        first_call.setdefault(i, position)
    for parent in inner:
        for child, _ in nodes[parent]["children"]:
            if child in first_call and first_call[child] < first_call[parent]:
                # The output first and still a node too early: an order that is not topological (breadth-first,
                # preorder); otherwise the topological order walked the wrong way.
                message_id = "backward_not_topological" if calls_log[:1] == [root] else "backward_wrong_order"
                return message(message_id, child=child, parent=parent, **case)
    return message("backward_wrong", node=wrong, expected=want_grads[wrong], got=got_grads[wrong])


# ---------------------------------------------------------------------- Neuron, Layer, MLP

def parameters(model, got_count, want_count, neurons, distinct, order, want_order):
    """model.parameters() of `model` (e.g. "MLP(3, [4, 4, 1])", with `neurons` neurons): `order` places each
    parameter as [neuron, weight index] ([neuron, -1] for a bias, [-1, -1] for a Value not the model's own)."""
    if got_count != want_count:
        hint = "bias" if got_count == want_count - neurons else "count"
        return message("parameters_count", model=model, got=got_count, expected=want_count, hint=hint)
    if distinct != got_count:
        return message("parameters_repeated", model=model)
    if [-1, -1] in order:
        return message("parameters_foreign", model=model)
    if order != want_order:
        return message("parameters_order", model=model)
    return None


def model_output(model, x, want, got, without_bias=None):
    """A model's outputs for input x; `without_bias`: what the same weights give when the biases are left out."""
    if all_close(got, want):
        return None
    if without_bias is not None and all_close(got, without_bias):
        return message("model_output_no_bias", model=model, x=x, expected=want, got=got)
    return message("model_output", model=model, x=x, expected=want, got=got)


def mlp_structure(model, want_sizes, got_sizes, want_nonlin, got_nonlin):
    """MLP layers: the fan-in of every neuron, layer by layer, and which layers are non-linear."""
    if got_sizes != want_sizes:
        return message("mlp_sizes", model=model, expected=[len(layer) for layer in want_sizes],
                       got=[len(layer) for layer in got_sizes])
    if got_nonlin != want_nonlin:
        return message("mlp_nonlin", model=model)
    return None


# ---------------------------------------------------------------------- training

def sgd_step(params, lr, got, want_data):
    """params: (data, grad) before the step; got: (data, grad) after it."""
    for before, (data, grad), expected in zip(params, got, want_data):
        if not close(data, expected):
            return message("sgd_step", before=list(before), lr=lr, expected=expected, got=data)
        if grad != before[1]:
            return message("sgd_step_changes_grad", before=list(before), got=grad)
    return None


TRAIN_MISTAKES = ("no_zero_grad", "zero_grad_after_backward", "ascent", "no_l2", "sum_not_mean")


def train(epochs, want_losses, got_losses, want_params, got_params, mistakes):
    """train()'s loss trajectory; `mistakes`: the trajectory each of TRAIN_MISTAKES gives on the same run."""
    if len(got_losses) != epochs:
        return message("train_length", epochs=epochs, got=len(got_losses))
    if all_close(got_losses, want_losses):
        if all_close(got_params, want_params):
            return None
        return message("train_final_parameters", expected=want_params, got=got_params)
    for mistake in TRAIN_MISTAKES:
        if mistake in mistakes and all_close(got_losses, mistakes[mistake]):
            return message("train_" + mistake)
    epoch = next(i for i, (g, w) in enumerate(zip(got_losses, want_losses)) if not close(g, w))
    return message("train_trajectory", epoch=epoch + 1, expected=want_losses[epoch], got=got_losses[epoch])
