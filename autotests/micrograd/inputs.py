"""Random inputs for the hidden tests, kept where the course's formulas are finite and well-conditioned."""
import math


def upstream_gradient(rng):
    """An upstream gradient other than 1, so that forgetting `* out.grad` shows."""
    return round(rng.choice([-1, 1]) * rng.uniform(0.5, 2.5), 3)


def random_graph(rng, leaves=3, operations=8):
    """Node specs for the harness's `graph` request, with shared sub-expressions and constants on both sides.

    Values are tracked while building so every operation stays inside its domain (log of a positive number,
    no division by almost zero, no overflow) and relu never sits exactly on its kink.
    """
    nodes, values = [], []
    for _ in range(leaves):
        v = round(rng.choice([-1, 1]) * rng.uniform(0.3, 2.0), 3)
        nodes.append({"leaf": v})
        values.append(v)
    while len(nodes) < leaves + operations:
        kind = rng.choice(["+", "-", "*", "/", "**", "neg", "exp", "log", "relu", "tanh", "sigmoid"])
        i = rng.randrange(len(nodes))
        a = values[i]
        if kind in ("+", "-", "*", "/"):
            j = rng.randrange(len(nodes))
            constant = round(rng.uniform(0.5, 3.0), 2)
            left, right = rng.choice([(i, j), (i, {"const": constant}), ({"const": constant}, i)])
            lv = values[left] if isinstance(left, int) else constant
            rv = values[right] if isinstance(right, int) else constant
            if kind == "/" and abs(rv) < 0.3:
                continue
            value = {"+": lv + rv, "-": lv - rv, "*": lv * rv, "/": lv / rv if rv else 0.0}[kind]
            spec = {"op": kind, "a": left, "b": right}
        elif kind == "**":
            exponent = rng.choice([2, 3, -1, 0.5])
            if (exponent == 0.5 and a < 0.2) or (exponent == -1 and abs(a) < 0.3):
                continue
            value, spec = a ** exponent, {"op": "**", "a": i, "exponent": exponent}
        elif kind == "log":
            if a < 0.2:
                continue
            value, spec = math.log(a), {"op": "log", "a": i}
        elif kind == "exp":
            if a > 3:
                continue
            value, spec = math.exp(a), {"op": "exp", "a": i}
        elif kind == "relu":
            if abs(a) < 1e-3:
                continue
            value, spec = max(a, 0.0), {"op": "relu", "a": i}
        elif kind == "neg":
            value, spec = -a, {"op": "neg", "a": i}
        elif kind == "tanh":
            value, spec = math.tanh(a), {"op": "tanh", "a": i}
        else:
            value, spec = 1 / (1 + math.exp(-a)), {"op": "sigmoid", "a": i}
        if abs(value) > 50:
            continue
        nodes.append(spec)
        values.append(value)
    return nodes


def random_dag(rng, size=12, max_children=3):
    """Node specs for the harness's `dag` request: plain Values with known local derivatives.

    Later nodes pick earlier ones at random, so nodes are shared, paths differ in length and a child can
    appear twice in one node (like x * x).
    """
    nodes = []
    for index in range(size):
        children = []
        if index >= 2 and (index == size - 1 or rng.random() < 0.7):
            for _ in range(rng.randint(1, max_children)):
                children.append([rng.randrange(index), round(rng.uniform(-1.5, 1.5), 3)])
        nodes.append({"data": round(rng.uniform(-2, 2), 3), "children": children})
    return nodes
