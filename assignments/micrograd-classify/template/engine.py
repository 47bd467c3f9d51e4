"""A scalar autograd engine: every number remembers how it was made, so gradients can flow back.

Each `Value` holds a number (`data`), the gradient of the final output with respect to it (`grad`),
the values it was computed from (`_prev`) and a closure (`_backward`) that applies the chain rule for
the one operation that produced it. `backward()` visits the graph from the output to the inputs and
calls those closures in order.
"""
import math


class Value:
    """A node of the computation graph: a number plus what is needed to differentiate through it."""

    def __init__(self, data, _children=(), _op='', label=''):
        self.data = data
        self.grad = 0.0  # d(output)/d(self), filled in by backward()
        self._prev = set(_children)  # the Values this one was computed from
        self._op = _op  # the operation that produced it, for debugging and drawing
        self.label = label
        self._backward = lambda: None  # a leaf has nothing to pass back

    # ------------------------------------------------------------------ operations with a gradient

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), '+')

        def _backward():
            # d(a + b)/da = 1 and d(a + b)/db = 1. Use +=: a node used twice gets both contributions.
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), '*')

        def _backward():
            # d(a * b)/da = b and d(a * b)/db = a.
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, other):
        if not isinstance(other, (int, float)):
            raise TypeError("only int or float exponents are supported, e.g. x**2 or x**-1")
        out = Value(self.data ** other, (self,), f'**{other}')

        def _backward():
            # d(a ** n)/da = n * a ** (n - 1).
            self.grad += other * self.data ** (other - 1) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        # math.exp overflows above about 709.78; saturating there keeps values and gradients finite.
        out = Value(math.exp(min(self.data, 709.0)), (self,), 'exp')

        def _backward():
            # d(e ** a)/da = e ** a, which is out.data.
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self):
        if self.data <= 0:
            raise ValueError(f"log is only defined for positive numbers, got {self.data}")
        out = Value(math.log(self.data), (self,), 'log')

        def _backward():
            # d(ln a)/da = 1 / a.
            self.grad += out.grad / self.data
        out._backward = _backward
        return out

    def relu(self):
        out = Value(0 if self.data < 0 else self.data, (self,), 'ReLU')

        def _backward():
            # The slope is 1 where the input is positive and 0 elsewhere (0 at exactly 0, too).
            self.grad += (1.0 if out.data > 0 else 0.0) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        x = self.data
        t = math.tanh(x)  # the textbook (e**2x - 1)/(e**2x + 1) overflows for x above about 355
        out = Value(t, (self,), 'tanh')

        def _backward():
            # d(tanh a)/da = 1 - tanh(a) ** 2.
            self.grad += (1 - t ** 2) * out.grad
        out._backward = _backward
        return out

    def sigmoid(self):
        x = self.data
        # Two forms of 1 / (1 + e**-x), so that math.exp never sees a large positive number.
        s = 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
        out = Value(s, (self,), 'sigmoid')

        def _backward():
            # d(sigmoid a)/da = s * (1 - s).
            self.grad += s * (1 - s) * out.grad
        out._backward = _backward
        return out

    # ------------------------------------------------------------------ backpropagation

    def backward(self):
        """Fill in `grad` of every Value that this one depends on, by the chain rule."""
        # Topological order: every node after all the nodes it was computed from. An explicit stack
        # rather than recursion, so that a graph 100,000 nodes deep does not overflow Python's stack.
        topo, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                topo.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)

        # d(self)/d(self) = 1; then each node passes its gradient on, outputs before inputs.
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()

    # ------------------------------------------------------------------ built from the operations above

    def __neg__(self):  # -self
        return self * -1

    def __radd__(self, other):  # other + self
        return self + other

    def __sub__(self, other):  # self - other
        return self + (-other)

    def __rsub__(self, other):  # other - self
        return other + (-self)

    def __rmul__(self, other):  # other * self
        return self * other

    def __truediv__(self, other):  # self / other
        return self * other ** -1

    def __rtruediv__(self, other):  # other / self
        return other * self ** -1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
