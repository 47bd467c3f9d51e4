"""The micrograd assignment's harness commands: they build, run and read back student code. Standard library only.

This file is copied into every sandbox (as /harness/commands.py), so it holds no solution logic
(docs/architecture.md): nothing here knows an expected value, a derivative formula or how to order a graph for
backpropagation. `dag` requests carry their local derivatives as numbers; orders and, on the course engine,
gradients come from the grader (`session.ask`). Each `cmd_<name>(session, **args)` answers one request with
numbers; the grader checks the reply's shape (autotests/micrograd/conftest.py) before using it.
"""
import operator

from grader_harness import WrongType, number, numbers

COURSE_ENGINE = "course-engine"  # the variant whose engine.py is the skeleton's (assignment.toml)

BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
UNARY_METHODS = ("exp", "log", "relu", "tanh", "sigmoid")


def children_of(node):
    prev = getattr(node, "_prev", None)
    if prev is None:
        raise WrongType(f"a Value made by {getattr(node, '_op', '?')!r} has no _prev")
    return list(prev)


MAX_GRAPH_NODES = 100_000  # a larger graph is the student's runaway, not something a test builds


def graph_of(root):
    """Every node reachable from root (root first, in no particular order) and each one's children as indices.

    Only an enumeration: which order is right for backpropagation is the grader's to say (`ask`)."""
    found, index, edges = [root], {id(root): 0}, []
    for node in found:  # grows while it is walked
        inputs = []
        for child in children_of(node):
            if id(child) not in index:
                if len(found) >= MAX_GRAPH_NODES:
                    raise WrongType(f"the graph has more than {MAX_GRAPH_NODES} nodes")
                index[id(child)] = len(found)
                found.append(child)
            inputs.append(index[id(child)])
        edges.append(inputs)
    return found, edges


def trusted_backward(root, upstream, ask):
    """Backpropagate with the student's `_backward` closures, in an order the grader computed.

    Returns a trace: for each node with inputs, each input's gradient before and after the node's
    `_backward` ran. The grader checks every entry against the reference, so it can name the operation
    whose closure is wrong, even deep inside a graph.
    """
    nodes, edges = graph_of(root)
    order = ask("order", children=edges)["order"]
    root.grad = upstream
    trace = []
    for i in order:
        current, children = nodes[i], [nodes[j] for j in edges[i]]
        before = [number(c.grad, "grad") for c in children]
        current._backward()
        if children and len(trace) < MAX_TRACE:
            trace.append({
                "op": str(current._op)[:MAX_OP_LABEL],
                "data": number(current.data, "data"),
                "grad": number(current.grad, "grad"),
                "children": [
                    {"data": number(c.data, "data"), "before": b, "after": number(c.grad, "grad")}
                    for c, b in zip(children, before)
                ],
            })
    return trace


MAX_TRACE = 500
MAX_OP_LABEL = 40


def course_backward(root, upstream, ask):
    """backward() of the course engine (a Value with the public forward code and no `_backward` of its own):
    the harness sends the graph, the grader answers with every node's gradient after backpropagation."""
    nodes, edges = graph_of(root)
    answer = ask("backward", root_grad=upstream, nodes=[
        {"op": str(node._op)[:MAX_OP_LABEL], "data": number(node.data, "data"),
         "grad": number(node.grad, "grad"), "children": children}
        for node, children in zip(nodes, edges)
    ])
    for node, grad in zip(nodes, answer["grads"]):
        node.grad = grad


class LinearModel:
    """y = w . x + b from the engine's own operations: a model for the training tests that owes nothing to nn.py."""

    def __init__(self, value_class, params):
        self.params = [value_class(p) for p in params]  # the weights, then the bias

    def __call__(self, x):
        out = self.params[-1]
        for wi, xi in zip(self.params, x):
            out = out + wi * xi
        return out

    def parameters(self):
        return list(self.params)

    def zero_grad(self):
        for param in self.params:
            param.grad = 0.0

def on_import(session, name, module):
    """On the course engine, backward() is the grader's: the skeleton's forward code has no `_backward` bodies."""
    if name == "engine" and session.variant == COURSE_ENGINE:
        module.Value.backward = lambda root: course_backward(root, 1.0, session.ask)


def value_class(session):
    return session.module("engine").Value


def backpropagate(session, root, upstream):
    """Backward from root with gradient `upstream`, trusting nothing of the student's backward(); the trace of
    the student's closures (None on the course engine, which has none)."""
    if session.variant == COURSE_ENGINE:
        course_backward(root, upstream, session.ask)
        return None
    return trusted_backward(root, upstream, session.ask)


# ---------------------------------------------------------------------- operations and graphs

def cmd_op(session, op, inputs, upstream, pregrads, exponent=None, same=False):
    """One operation, then its `_backward` called directly with `upstream` in out.grad."""
    xs = [value_class(session)(x) for x in inputs]
    a = xs[0]
    b = a if same else (xs[1] if len(xs) > 1 else None)
    if op in BINARY:
        out = BINARY[op](a, b)
    elif op == "**":
        out = a ** exponent
    else:
        out = getattr(a, op)()
    for x, g in zip(xs, pregrads):
        x.grad = g
    out.grad = upstream
    out._backward()
    return {"data": number(out.data, "out.data"), "grads": numbers([x.grad for x in xs], "grad")}

def build_graph(session, nodes):
    built = []
    for spec in nodes:
        if "leaf" in spec:
            built.append(value_class(session)(spec["leaf"]))
            continue
        op = spec["op"]
        a = operand(built, spec["a"])
        if op in BINARY:
            built.append(BINARY[op](a, operand(built, spec["b"])))
        elif op == "**":
            built.append(a ** spec["exponent"])
        elif op == "neg":
            built.append(-a)
        elif op in UNARY_METHODS:
            built.append(getattr(a, op)())
        else:
            raise ValueError(f"unknown graph op {op!r}")
    return built

def cmd_graph(session, nodes, upstream, backward="trusted"):
    """Build an expression graph; backpropagate from its last node with trusted or student backward()."""
    built = build_graph(session, nodes)
    root = built[-1]
    trace = None
    if backward == "trusted":
        trace = backpropagate(session, root, upstream)
    else:
        root.backward()
    return {
        "data": numbers([v.data for v in built], "data"),
        "grads": numbers([v.grad for v in built], "grad"),
        "trace": trace,
    }

def cmd_dag(session, nodes, pregrads=(), calls=1):
    """A graph of plain Values whose `_backward` closures are ours: only the student's backward() is on trial.

    nodes[i] = {"data": d, "children": [[j, local_derivative], ...]}; the last node is the root.
    """
    built, log = [], []
    for index, spec in enumerate(nodes):
        children = [(built[j], coef) for j, coef in spec["children"]]
        node = value_class(session)(spec["data"], tuple(c for c, _ in children), "f" if children else "")
        node._backward = record_and_pass(index, node, children, log)
        built.append(node)
    for index, grad in pregrads:
        built[index].grad = grad
    for _ in range(calls):
        built[-1].backward()
    return {"grads": numbers([v.grad for v in built], "grad"), "calls": log}

# ---------------------------------------------------------------------- nn

def build_model(session, kind, args, kwargs):
    cls = {"neuron": "Neuron", "layer": "Layer", "mlp": "MLP"}[kind]
    return getattr(session.module("nn"), cls)(*args, **kwargs)

def cmd_model_structure(session, kind, args, kwargs=None, with_parameters=True):
    """What the contract says a model is made of, and (with_parameters) how parameters() lists it."""
    model = build_model(session, kind, args, kwargs or {})
    answer = {"structure": describe_model(model, kind)}
    if with_parameters:
        try:
            params = list(model.parameters())
        except TypeError:
            raise WrongType("parameters() must return a list of Values") from None
        place = {id(p): place for place, p in contract_places(model, kind)}
        answer.update(count=len(params), distinct=len({id(p) for p in params}),
                      order=[place.get(id(p), [-1, -1]) for p in params])
    return answer

def cmd_model_forward(session, kind, args, params, x, upstream, kwargs=None, x_as_values=True):
    """Forward with injected parameters (set through the contract's attributes), then trusted backward."""
    model = build_model(session, kind, args, kwargs or {})
    neurons = neurons_of(model, kind)
    set_per_neuron(neurons, params, "data")
    inputs = [value_class(session)(v) for v in x] if x_as_values else list(x)
    out = model(inputs)
    single = isinstance(out, value_class(session))
    outs = [out] if single else list(out)
    if not all(isinstance(o, value_class(session)) for o in outs):
        raise WrongType(f"{kind} returned {type(out).__name__}, expected a Value or a list of Values")
    loss = outs[0] * upstream[0]
    for o, u in zip(outs[1:], upstream[1:]):
        loss = loss + o * u
    backpropagate(session, loss, 1.0)
    return {
        "single": single,
        "out": numbers([o.data for o in outs], "output"),
        "param_grads": per_neuron(neurons, "grad"),
        "x_grads": numbers([v.grad for v in inputs], "input grad") if x_as_values else [],
    }

def cmd_zero_grad(session, kind, args, grads):
    model = build_model(session, kind, args, {})
    neurons = neurons_of(model, kind)
    set_per_neuron(neurons, grads, "grad")
    data = per_neuron(neurons, "data")
    model.zero_grad()
    return {"grads": per_neuron(neurons, "grad"), "data_kept": per_neuron(neurons, "data") == data}

# ---------------------------------------------------------------------- training

def scalar_loss(session, fn_name, values, *rest):
    vs = [value_class(session)(v) for v in values]
    loss = getattr(session.module("train"), fn_name)(vs, *rest)
    if not isinstance(loss, value_class(session)):
        raise WrongType(f"{fn_name}() returned a {type(loss).__name__}, expected a Value")
    backpropagate(session, loss, 1.0)
    return {"data": number(loss.data, "loss"), "grads": numbers([v.grad for v in vs], "grad")}

def cmd_mse_loss(session, ypred, ys):
    return scalar_loss(session, "mse_loss", ypred, ys)

def cmd_l2_penalty(session, params, lam):
    return scalar_loss(session, "l2_penalty", params, lam)

def cmd_sgd_step(session, params, lr):
    ps = []
    for data, grad in params:
        p = value_class(session)(data)
        p.grad = grad
        ps.append(p)
    session.module("train").sgd_step(ps, lr)
    return [[number(p.data, "data"), number(p.grad, "grad")] for p in ps]

def cmd_train(session, params, xs, ys, epochs, lr, lam):
    model = LinearModel(value_class(session), params)
    losses = session.module("train").train(model, xs, ys, epochs, lr, lam)
    if not isinstance(losses, list):
        raise WrongType(f"train() returned a {type(losses).__name__}, expected a list of floats")
    return {
        "losses": numbers(losses, "losses"),
        "params": numbers([p.data for p in model.parameters()], "parameter"),
    }


def operand(built, ref):
    return built[ref] if isinstance(ref, int) else ref["const"]


MAX_CALL_LOG = 10_000


def record_and_pass(index, node, children, log):
    def _backward():
        if len(log) < MAX_CALL_LOG:
            log.append(index)
        for child, local_derivative in children:
            child.grad += local_derivative * node.grad
    return _backward


def neurons_of(model, kind):
    """The model's neurons, found through the contract's attributes `neurons` and `layers`, layer by layer."""
    if kind == "neuron":
        return [model]
    if kind == "layer":
        return list(model.neurons)
    return [n for layer in model.layers for n in layer.neurons]


def per_neuron(neurons, attribute):
    """The `attribute` ("data" or "grad") of each neuron's weights and bias: [{"w": [...], "b": x}, ...]."""
    return [{"w": numbers([getattr(w, attribute) for w in n.w], attribute), "b": number(getattr(n.b, attribute),
                                                                                         attribute)}
            for n in neurons]


def set_per_neuron(neurons, values, attribute):
    for n, given in zip(neurons, values):
        for w, x in zip(n.w, given["w"]):
            setattr(w, attribute, x)
        setattr(n.b, attribute, given["b"])


def contract_places(model, kind):
    """(place, parameter) for every weight and bias: place = [neuron, weight index], or [neuron, -1] for a bias."""
    for i, n in enumerate(neurons_of(model, kind)):
        yield [i, -1], n.b
        for k, w in enumerate(n.w):
            yield [i, k], w


def describe_model(model, kind):
    if kind == "neuron":
        return {"inputs": len(model.w), "nonlin": bool(model.nonlin)}
    if kind == "layer":
        return [describe_model(n, "neuron") for n in model.neurons]
    return [describe_model(layer, "layer") for layer in model.layers]
