"""A tiny neural-network library on top of the scalar engine: neurons, layers, multi-layer perceptrons."""
import random

from engine import Value


class Module:
    """Something with trainable parameters."""

    def zero_grad(self):
        """Reset the gradient of every parameter before a new backward pass."""
        raise NotImplementedError("Module.zero_grad is not written yet")

    def parameters(self):
        return []


class Neuron(Module):
    """y = relu(w . x + b), or just w . x + b for a linear neuron."""

    def __init__(self, nin, nonlin=True):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x):
        raise NotImplementedError("Neuron.__call__ is not written yet")

    def parameters(self):
        # The weights first, then the bias.
        raise NotImplementedError("Neuron.parameters is not written yet")

    def __repr__(self):
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """nout neurons that all read the same inputs."""

    def __init__(self, nin, nout, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        # A layer of one neuron returns that neuron's Value, not a list of one.
        raise NotImplementedError("Layer.__call__ is not written yet")

    def parameters(self):
        raise NotImplementedError("Layer.parameters is not written yet")

    def __repr__(self):
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Layers of sizes [nin] + nouts; every layer is non-linear except the last."""

    def __init__(self, nin, nouts):
        raise NotImplementedError("MLP.__init__ is not written yet")

    def __call__(self, x):
        raise NotImplementedError("MLP.__call__ is not written yet")

    def parameters(self):
        raise NotImplementedError("MLP.parameters is not written yet")

    def __repr__(self):
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
