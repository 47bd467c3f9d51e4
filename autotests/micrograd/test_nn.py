"""Hidden tests, group `nn`: Neuron, Layer, MLP and Module.zero_grad.

Parameters are injected through the contract's attributes (`w`, `b`, `neurons`, `layers`), never taken from
`random`. A test that fails on the student's engine runs again over the reference engine, so an engine bug
costs points in `ops`/`backprop` only.
"""
import math

import diagnosis
import pytest

from grader.testing import Feedback, all_close

pytestmark = pytest.mark.group("nn")

MODELS = {"neuron": "Neuron", "layer": "Layer", "mlp": "MLP"}


def parameter_count(kind, args):
    if kind == "neuron":
        return args[0] + 1
    if kind == "layer":
        return args[1] * (args[0] + 1)
    sizes = [args[0]] + args[1]
    return sum(sizes[i + 1] * (sizes[i] + 1) for i in range(len(args[1])))


def fan_ins(kind, args):
    """The number of inputs of each neuron, layer by layer."""
    if kind == "neuron":
        return [args[0]]
    if kind == "layer":
        return [args[0]] * args[1]
    sizes = [args[0]] + args[1]
    return [sizes[i] for i in range(len(args[1])) for _ in range(sizes[i + 1])]


def per_neuron(kind, args, flat):
    """Parameters in the contract's order (each neuron's weights then its bias, neuron after neuron) as the
    harness takes them: one {"w", "b"} per neuron."""
    nested, start = [], 0
    for nin in fan_ins(kind, args):
        nested.append({"w": flat[start:start + nin], "b": flat[start + nin]})
        start += nin + 1
    return nested


def in_contract_order(nested):
    return [v for neuron in nested for v in neuron["w"] + [neuron["b"]]]


def model_call(kind, args, kwargs=None):
    """The model as the Python call that builds it, e.g. "Neuron(3, nonlin=False)": code reads the same in every
    language of the report."""
    words = [str(a) for a in args] + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    return f"{MODELS[kind]}({', '.join(words)})"


def neuron_count(kind, args):
    if kind == "neuron":
        return 1
    return args[1] if kind == "layer" else sum(args[1])


def check_parameters(code, reference, kind, args):
    got, want = code.call_beside(reference, "model_structure", kind=kind, args=args)
    call = model_call(kind, args)
    found = diagnosis.parameters(call, got["count"], want["count"], neuron_count(kind, args), got["distinct"],
                                 got["order"], want["order"])
    if found is not None:
        raise Feedback(found["id"], **found["params"])


def check_forward(code, reference, kind, args, params, x, upstream, x_as_values=True, kwargs=None):
    request = {"kind": kind, "args": args, "params": per_neuron(kind, args, params), "x": x, "upstream": upstream,
               "x_as_values": x_as_values, "kwargs": kwargs or {}}
    got, want = code.call_beside(reference, "model_forward", **request)
    got_grads, want_grads = in_contract_order(got["param_grads"]), in_contract_order(want["param_grads"])
    call = model_call(kind, args, kwargs)
    if got["single"] != want["single"]:
        raise Feedback("layer_single_output" if want["single"] else "layer_list_output", model=call)
    if not all_close(got["out"], want["out"]):
        no_bias = reference.call("model_forward", **{**request, "params": [
            {"w": neuron["w"], "b": 0.0} for neuron in request["params"]]})["out"]
        found = diagnosis.model_output(call, x, want["out"], got["out"], without_bias=no_bias)
        raise Feedback(found["id"], **found["params"])
    if not all_close(got_grads, want_grads) or not all_close(got["x_grads"], want["x_grads"]):
        raise Feedback("model_gradients", model=call, x=x, expected=want_grads, got=got_grads)


def values(rng, n):
    return [round(rng.uniform(-1, 1), 3) for _ in range(n)]


def fixed_values(n):
    """n deterministic parameters in [-0.9, 0.9], of both signs, none near 0 (at least 0.1 away for n <= 41)."""
    return [round(0.9 * math.sin(2.1 * i + 0.7), 3) for i in range(n)]


# Deterministic cases: every model has non-zero biases, and inputs for which some pre-activations are positive
# and some negative (the output of the last layer too), so that a relu too many or too few always shows.
# Random cases after them are extras.


# ---------------------------------------------------------------------- parameters() and structure

@pytest.mark.covers("Neuron.parameters")
def test_neuron_parameters_are_weights_then_bias(on_any_engine, reference):
    on_any_engine(lambda code: check_parameters(code, reference, "neuron", [3]))


@pytest.mark.covers("Layer.parameters")
def test_layer_parameters_neuron_by_neuron(on_any_engine, reference):
    on_any_engine(lambda code: check_parameters(code, reference, "layer", [3, 4]))


@pytest.mark.covers("MLP.parameters")
def test_mlp_parameters_layer_by_layer(on_any_engine, reference):
    on_any_engine(lambda code: check_parameters(code, reference, "mlp", [3, [4, 4, 1]]))


@pytest.mark.covers("MLP.__init__")
@pytest.mark.parametrize("nin, nouts", [(3, [4, 4, 1]), (2, [3]), (1, [2, 5, 2])])
def test_mlp_layer_sizes_and_nonlinearity(on_any_engine, reference, nin, nouts):
    def check(code):
        got, want = (answer["structure"] for answer in code.call_beside(
            reference, "model_structure", kind="mlp", args=[nin, nouts], with_parameters=False))
        found = diagnosis.mlp_structure(
            model_call("mlp", [nin, nouts]), [[n["inputs"] for n in layer] for layer in want],
            [[n["inputs"] for n in layer] for layer in got], [[n["nonlin"] for n in layer] for layer in want],
            [[n["nonlin"] for n in layer] for layer in got])
        if found is not None:
            raise Feedback(found["id"], **found["params"])

    on_any_engine(check)


@pytest.mark.covers("Module.zero_grad")
@pytest.mark.parametrize("kind, args", [("neuron", [3]), ("layer", [3, 2]), ("mlp", [2, [3, 1]])])
def test_zero_grad_resets_every_parameter(on_any_engine, kind, args):
    count = parameter_count(kind, args)
    grads = [(0.5 + 0.25 * i) * (-1) ** i for i in range(count)]  # every one non-zero, the biases too

    def check(code):
        got = code.call("zero_grad", kind=kind, args=args, grads=per_neuron(kind, args, grads))
        left = sum(g != 0 for g in in_contract_order(got["grads"]))
        if left:
            raise Feedback("zero_grad", model=model_call(kind, args), left=left)
        if not got["data_kept"]:
            raise Feedback("zero_grad_changes_data", model=model_call(kind, args))

    on_any_engine(check)


# ---------------------------------------------------------------------- forward values and gradients

@pytest.mark.covers("Neuron.__call__")
@pytest.mark.parametrize("nonlin", [True, False])
def test_neuron_forward_and_gradients_match_reference(on_any_engine, reference, rng, nonlin):
    kwargs = {} if nonlin else {"nonlin": False}
    params = [0.6, -0.4, 0.25, 0.4]  # a non-zero bias
    cases = [(params, [0.5, -1.0, 2.0]),  # w . x + b = 1.6
             (params, [-0.5, 1.0, -2.0]),  # w . x + b = -0.8
             (values(rng, 3) + [0.4], values(rng, 3))]  # an extra, random case
    for p, x in cases:
        on_any_engine(lambda code, p=p, x=x: check_forward(
            code, reference, "neuron", [3], p, x, [1.5], kwargs=kwargs))


@pytest.mark.covers("Neuron.__call__")
def test_neuron_accepts_plain_numbers(on_any_engine, reference):
    on_any_engine(lambda code: check_forward(
        code, reference, "neuron", [2], [0.8, -0.6, -0.3], [1.5, -0.5], [1.0], x_as_values=False))


@pytest.mark.covers("Layer.__call__")
def test_layer_forward_and_gradients_match_reference(on_any_engine, reference, rng):
    # Pre-activations -1.188, 2.503 and -1.412, then an extra, random case.
    for params, x in [(fixed_values(12), [0.5, -1.0, 2.0]),
                      (values(rng, 3 * 4), values(rng, 3))]:
        on_any_engine(lambda code, params=params, x=x: check_forward(
            code, reference, "layer", [3, 3], params, x, [1.0, -0.5, 2.0]))


@pytest.mark.covers("Layer.__call__")
def test_layer_of_one_neuron_returns_a_single_value(on_any_engine, reference):
    on_any_engine(lambda code: check_forward(
        code, reference, "layer", [2, 1], [0.7, -0.5, 0.2], [0.5, -1.0], [1.0]))


# MLP(2, [3, 2]) on x = [1.2, -0.7]: hidden pre-activations 1.39, -1.45, 0.22; outputs -0.373 and 0.242.
MLP_2_3_2 = [0.7, -0.5, 0.2, -0.6, 0.9, -0.1, 0.4, 0.8, 0.3, 0.5, -0.8, 0.6, -1.2, -0.4, 0.7, 0.9, 0.6]


@pytest.mark.covers("MLP.__call__")
@pytest.mark.parametrize("nin, nouts", [(3, [4, 4, 1]), (2, [3, 2])])
def test_mlp_forward_and_gradients_match_reference(on_any_engine, reference, rng, nin, nouts):
    # MLP(3, [4, 4, 1]) on x = [0.5, -1, 2]: both hidden layers have pre-activations of both signs, the
    # output's is -1.788.
    fixed = (fixed_values(41), [0.5, -1.0, 2.0]) if nin == 3 else (MLP_2_3_2, [1.2, -0.7])
    upstream = [1.5] if nouts[-1] == 1 else [1.5, -0.5]
    for params, x in [fixed, (values(rng, parameter_count("mlp", [nin, nouts])), values(rng, nin))]:
        on_any_engine(lambda code, params=params, x=x: check_forward(
            code, reference, "mlp", [nin, nouts], params, x, upstream))
