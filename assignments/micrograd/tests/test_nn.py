"""Public tests for nn.py. Weights are set by hand, never random, so every number below is exact.

Your neurons' weights are `neuron.w` (a list of Values) and the bias is `neuron.b` (given code). Models are
built so that each test needs as little of your other code as it can: a Layer's test sets its neurons' weights
directly (not through parameters()), an MLP's call and parameters tests build the MLP's layers by hand (not
through MLP.__init__).
"""
import diagnosis
from checks import covers, expect, expect_close, expect_equal
from engine import Value
from nn import MLP, Layer, Module, Neuron


def set_weights(neurons, flat):
    """Each neuron's weights then its bias, neuron after neuron, set through the contract's attributes."""
    flat = list(flat)
    for n in neurons:
        for w in n.w:
            w.data = flat.pop(0)
        n.b.data = flat.pop(0)


def mlp_of(*layers):
    """An MLP made of these layers, without MLP.__init__."""
    model = MLP.__new__(MLP)
    model.layers = list(layers)
    return model


def places(neurons):
    """Where each of the neurons' own Values sits: [neuron, weight index], or [neuron, -1] for a bias."""
    found = {}
    for i, n in enumerate(neurons):
        found[id(n.b)] = [i, -1]
        for k, w in enumerate(n.w):
            found[id(w)] = [i, k]
    return found


def check_parameters(model, call, neurons):
    params = list(model.parameters())
    where = places(neurons)
    want = [[i, k] for i, n in enumerate(neurons) for k in list(range(len(n.w))) + [-1]]
    expect(diagnosis.parameters(call, len(params), len(want), len(neurons), len({id(p) for p in params}),
                                [where.get(id(p), [-1, -1]) for p in params], want))


class Pair(Module):
    """A module with two parameters, so zero_grad can be tested on its own."""

    def __init__(self):
        self.a, self.b = Value(1.0), Value(2.0)

    def parameters(self):
        return [self.a, self.b]


@covers("Module.zero_grad")
def test_zero_grad_resets_every_parameter():
    m = Pair()
    m.a.grad, m.b.grad = 0.5, -3.0
    m.zero_grad()
    left = sum(p.grad != 0 for p in (m.a, m.b))
    if left:
        expect(diagnosis.message("zero_grad", model="Pair()", left=left))
    if [m.a.data, m.b.data] != [1.0, 2.0]:
        expect(diagnosis.message("zero_grad_changes_data", model="Pair()"))


def check_neuron(w, b, x, expected, without_bias, nonlin=True, as_values=False):
    n = Neuron(len(w), nonlin=nonlin)
    set_weights([n], w + [b])
    out = n([Value(v) for v in x] if as_values else x)
    call = f"Neuron({len(w)})" if nonlin else f"Neuron({len(w)}, nonlin=False)"
    expect_equal(type(out).__name__, "Value", "check.output_type", model=call)
    expect(diagnosis.model_output(call, x, [expected], [out.data], without_bias=[without_bias]))


@covers("Neuron.__call__")
def test_neuron_output():
    check_neuron([0.5, -1.0, 2.0], 0.1, [2.0, 0.5, 1.0], 2.6, 2.5)  # relu(2.5 + 0.1)
    check_neuron([0.5, -1.0, 2.0], 0.1, [1.0, 2.0, 0.5], 0.0, 0.0)  # relu(-0.5 + 0.1)


@covers("Neuron.__call__")
def test_linear_neuron_has_no_relu():
    check_neuron([0.5, -1.0, 2.0], 0.1, [1.0, 2.0, 0.5], -0.4, -0.5, nonlin=False)


@covers("Neuron.__call__")
def test_neuron_accepts_values_as_inputs():
    check_neuron([0.5, -1.0], 0.25, [2.0, 0.5], 0.75, 0.5, as_values=True)


@covers("Neuron.parameters")
def test_neuron_parameters_are_weights_then_bias():
    n = Neuron(3)
    check_parameters(n, "Neuron(3)", [n])


@covers("Layer.__call__", uses=("Neuron.__call__",))
def test_layer_output():
    layer = Layer(2, 3)
    set_weights(layer.neurons, [0.5, -1.0, 0.25,  1.0, -1.0, -0.5,  -2.0, -0.5, 0.0])
    outs = layer([1.0, -2.0])
    expect_equal(type(outs).__name__, "list", "check.output_type", model="Layer(2, 3)")
    expect(diagnosis.model_output("Layer(2, 3)", [1.0, -2.0], [2.75, 2.5, 0.0], [o.data for o in outs],
                                  without_bias=[2.5, 3.0, 0.0]))


@covers("Layer.__call__", uses=("Neuron.__call__",))
def test_layer_of_one_neuron_returns_a_value():
    layer = Layer(2, 1)
    set_weights(layer.neurons, [0.5, -1.0, 0.25])
    out = layer([1.0, -2.0])
    if type(out).__name__ != "Value":
        expect(diagnosis.message("layer_single_output", model="Layer(2, 1)"))
    expect(diagnosis.model_output("Layer(2, 1)", [1.0, -2.0], [2.75], [out.data], without_bias=[2.5]))


@covers("Layer.parameters", uses=("Neuron.parameters",))
def test_layer_parameters_neuron_by_neuron():
    layer = Layer(2, 3)
    check_parameters(layer, "Layer(2, 3)", layer.neurons)


@covers("MLP.__init__")
def test_mlp_layer_sizes_and_nonlinearity():
    for nin, nouts in ((3, [4, 4, 1]), (2, [3])):
        model = MLP(nin, nouts)
        sizes = [nin] + nouts
        expect(diagnosis.mlp_structure(
            f"MLP({nin}, {nouts})", [[sizes[i]] * sizes[i + 1] for i in range(len(nouts))],
            [[len(n.w) for n in layer.neurons] for layer in model.layers],
            [[i < len(nouts) - 1] * sizes[i + 1] for i in range(len(nouts))],
            [[bool(n.nonlin) for n in layer.neurons] for layer in model.layers]))


@covers("MLP.__call__", uses=("Layer.__call__", "Neuron.__call__"))
def test_mlp_output():
    model = mlp_of(Layer(2, 2), Layer(2, 1, nonlin=False))
    set_weights([n for layer in model.layers for n in layer.neurons],
                [0.5, -0.3, 0.2,  -0.8, 0.6, 0.1,  1.5, -2.0, 0.3])
    for x, expected in (([1.0, 2.0], -0.55), ([-1.0, 0.5], -2.1)):
        out = model(x)
        expect_equal(type(out).__name__, "Value", "check.output_type", model="MLP(2, [2, 1])")
        expect_close(out.data, expected, "check.model_output", model="MLP(2, [2, 1])", x=x)


@covers("MLP.parameters", uses=("Layer.parameters", "Neuron.parameters"))
def test_mlp_parameters_layer_by_layer():
    model = mlp_of(Layer(3, 4), Layer(4, 4), Layer(4, 1, nonlin=False))
    check_parameters(model, "MLP(3, [4, 4, 1])", [n for layer in model.layers for n in layer.neurons])
