"""Public tests for nn.py. Weights are set by hand, never random, so every number below is exact.

Your neurons' weights are `neuron.w` (a list of Values) and the bias is `neuron.b` (given code);
layers and MLPs get their weights through parameters().
"""
from checks import covers, expect_close, expect_equal
from engine import Value
from nn import MLP, Layer, Module, Neuron


def set_params(module, values):
    params = module.parameters()
    expect_equal(len(params), len(values), f"number of parameters of {module!r}")
    for p, v in zip(params, values):
        p.data = v


def make_neuron(w, b, nonlin=True):
    n = Neuron(len(w), nonlin=nonlin)
    for wi, v in zip(n.w, w):
        wi.data = v
    n.b.data = b
    return n


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
    expect_close([m.a.grad, m.b.grad], [0.0, 0.0], "after zero_grad(), the list of the parameters' grads",
                 grads_before=[0.5, -3.0])
    expect_close([m.a.data, m.b.data], [1.0, 2.0],
                 "after zero_grad() (which must not change data), the list of the parameters' data")


@covers("Neuron.__call__")
def test_neuron_output():
    n = make_neuron([0.5, -1.0, 2.0], 0.1)
    for x, expected in (([2.0, 0.5, 1.0], 2.6), ([1.0, 2.0, 0.5], 0.0)):
        out = n(x)
        expect_equal(type(out).__name__, "Value", "type of a neuron's output")
        expect_close(out.data, expected, "relu neuron output", w=[0.5, -1.0, 2.0], b=0.1, x=x)


@covers("Neuron.__call__")
def test_linear_neuron_has_no_relu():
    n = make_neuron([0.5, -1.0, 2.0], 0.1, nonlin=False)
    expect_close(n([1.0, 2.0, 0.5]).data, -0.4, "linear neuron (nonlin=False) output",
                 w=[0.5, -1.0, 2.0], b=0.1, x=[1.0, 2.0, 0.5])


@covers("Neuron.parameters")
def test_neuron_parameters_are_weights_then_bias():
    n = make_neuron([1.0, 2.0, 3.0], 4.0)
    params = n.parameters()
    expect_close([p.data for p in params], [1.0, 2.0, 3.0, 4.0], "the list of the data of Neuron(3).parameters()",
                 w=[1.0, 2.0, 3.0], b=4.0)
    expect_equal(all(p is q for p, q in zip(params, n.w + [n.b])), True,
                 "Neuron.parameters() returns the neuron's own Values (not copies)")


@covers("Layer.__call__")
def test_layer_output():
    layer = Layer(2, 3)
    set_params(layer, [0.5, -1.0, 0.25,  1.0, -1.0, -0.5,  -2.0, -0.5, 0.0])
    outs = layer([1.0, -2.0])
    expect_equal(type(outs).__name__, "list", "type of Layer(2, 3)'s output")
    expect_close([o.data for o in outs], [2.75, 2.5, 0.0], "the list of Layer(2, 3)'s outputs", x=[1.0, -2.0])


@covers("Layer.__call__")
def test_layer_of_one_neuron_returns_a_value():
    layer = Layer(2, 1)
    set_params(layer, [0.5, -1.0, 0.25])
    out = layer([1.0, -2.0])
    expect_equal(type(out).__name__, "Value", "type of Layer(2, 1)'s output")
    expect_close(out.data, 2.75, "Layer(2, 1) output", x=[1.0, -2.0])


@covers("Layer.parameters")
def test_layer_parameters_neuron_by_neuron():
    layer = Layer(2, 3)
    for i, n in enumerate(layer.neurons):
        for j, w in enumerate(n.w):
            w.data = 10.0 * i + j
        n.b.data = 10.0 * i + 9
    params = layer.parameters()
    expect_close([p.data for p in params], [0.0, 1.0, 9.0, 10.0, 11.0, 19.0, 20.0, 21.0, 29.0],
                 "the list of the data of Layer(2, 3).parameters() (neuron i has w = [10i, 10i+1], b = 10i+9)")
    own = [p for n in layer.neurons for p in n.w + [n.b]]
    expect_equal(all(p is q for p, q in zip(params, own)), True,
                 "Layer.parameters() returns the neurons' own Values (not copies)")


@covers("MLP.__init__")
def test_mlp_shape():
    model = MLP(3, [4, 4, 1])
    expect_equal(len(model.layers), 3, "MLP(3, [4, 4, 1]): number of layers")
    expect_equal([len(layer.neurons) for layer in model.layers], [4, 4, 1], "MLP(3, [4, 4, 1]): neurons per layer")
    expect_equal([len(layer.neurons[0].w) for layer in model.layers], [3, 4, 4],
                 "MLP(3, [4, 4, 1]): inputs per neuron, layer by layer")
    expect_equal([all(n.nonlin for n in layer.neurons) for layer in model.layers], [True, True, False],
                 "MLP(3, [4, 4, 1]): which layers use relu (all but the last)")


@covers("MLP.__call__")
def test_mlp_output():
    model = MLP(2, [2, 1])
    set_params(model, [0.5, -0.3, 0.2,  -0.8, 0.6, 0.1,  1.5, -2.0, 0.3])
    for x, expected in (([1.0, 2.0], -0.55), ([-1.0, 0.5], -2.1)):
        out = model(x)
        expect_equal(type(out).__name__, "Value", "type of MLP(2, [2, 1])'s output")
        expect_close(out.data, expected, "MLP(2, [2, 1]) output", x=x)


@covers("MLP.parameters")
def test_mlp_parameters_layer_by_layer():
    model = MLP(3, [4, 4, 1])
    params = model.parameters()
    expect_equal(len(params), 41, "MLP(3, [4, 4, 1]): number of parameters (4*4 + 4*5 + 1*5)")
    own = [p for layer in model.layers for n in layer.neurons for p in n.w + [n.b]]
    expect_equal(all(p is q for p, q in zip(params, own)), True,
                 "MLP.parameters() in order: layer by layer, neuron by neuron, weights then bias")
