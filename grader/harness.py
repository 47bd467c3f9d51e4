"""Runs student code and answers requests with raw numbers. Standard library only.

In the sandbox it runs as a script (`python -I -S harness.py CODE_DIR OUTPUT_LIMIT [course-engine]`): it reads
one JSON request per line on stdin and writes one JSON reply per line on stdout; in the middle of a request it
may ask the grader a question (a line `{"ask": ...}` out, one answer line in). The grader also imports it to run
the very same requests on the reference in its own (trusted) process, so that student and reference are driven
by one piece of code.

This file is copied into every sandbox, so it holds no solution logic (docs/architecture.md): nothing here
knows an expected value, a derivative formula or how to order a graph for backpropagation. `dag` requests
carry their local derivatives as numbers; orders and, on the course engine, gradients come from the grader.
"""
import importlib
import json
import operator
import os
import sys

BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
UNARY_METHODS = ("exp", "log", "relu", "tanh", "sigmoid")


class WrongType(Exception):
    """Student code returned something that is not what the contract promises."""


def number(x, what):
    """A float from a student's number; ints and bools are numbers too (`Value(0)`, `grad = 0`)."""
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(x)  # e.g. numpy scalars
    except Exception:
        raise WrongType(f"{what} is a {type(x).__name__}, expected a number") from None


def numbers(xs, what):
    return [number(x, f"{what}[{i}]") for i, x in enumerate(xs)]


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


class Session:
    """Answers requests against one set of modules (`engine`, `nn`, `train`).

    `ask(kind, **payload)` puts a question to the grader in the middle of a request and returns its answer:
    "order" (an order for backpropagation) and, on the course engine, "backward" (the gradients).
    With `course_engine`, engine.py is the course's public forward code and backward() is the grader's.
    """

    def __init__(self, load_module, root=".", ask=None, course_engine=False):
        self._load_module = load_module
        self.root = root  # the folder holding the student's files (and the public tests)
        self.ask = ask
        self.course_engine = course_engine
        self._engine_ready = False

    def module(self, name):
        if self.course_engine and not self._engine_ready:
            self._engine_ready = True
            value = self._load_module("engine").Value
            value.backward = lambda root: course_backward(root, 1.0, self.ask)
        return self._load_module(name)

    def backpropagate(self, root, upstream):
        """Backward from root with gradient `upstream`, trusting nothing of the student's backward(); the trace
        of the student's closures (None on the course engine, which has none)."""
        if self.course_engine:
            course_backward(root, upstream, self.ask)
            return None
        return trusted_backward(root, upstream, self.ask)

    @property
    def Value(self):
        return self.module("engine").Value

    def run(self, cmd, args):
        handler = getattr(self, "cmd_" + cmd, None)
        if handler is None:
            raise ValueError(f"unknown command {cmd!r}")
        return handler(**args)

    # ------------------------------------------------------------------ engine

    def cmd_load(self, names, required=None):
        """Import each module; report which ones failed (the error itself, for the grader to word), and
        which of the names in `required` (module -> names) a module that did import does not define."""
        problems = {}
        for name in names:
            try:
                module = self.module(name)
            except BaseException as exc:  # noqa: B036 - SyntaxError, SystemExit... all belong in the report
                problems[name] = describe_exception(exc)
                continue
            missing = [n for n in (required or {}).get(name, []) if not hasattr(module, n)]
            if missing:
                problems[name] = {"type": "missing", "missing": missing, "message": "", "traceback": []}
        return problems

    def cmd_op(self, op, inputs, upstream, pregrads, exponent=None, same=False):
        """One operation, then its `_backward` called directly with `upstream` in out.grad."""
        xs = [self.Value(x) for x in inputs]
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

    def build_graph(self, nodes):
        built = []
        for spec in nodes:
            if "leaf" in spec:
                built.append(self.Value(spec["leaf"]))
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

    def cmd_graph(self, nodes, upstream, backward="trusted"):
        """Build an expression graph; backpropagate from its last node with trusted or student backward()."""
        built = self.build_graph(nodes)
        root = built[-1]
        trace = None
        if backward == "trusted":
            trace = self.backpropagate(root, upstream)
        else:
            root.backward()
        return {
            "data": numbers([v.data for v in built], "data"),
            "grads": numbers([v.grad for v in built], "grad"),
            "trace": trace,
        }

    def cmd_dag(self, nodes, pregrads=(), calls=1):
        """A graph of plain Values whose `_backward` closures are ours: only the student's backward() is on trial.

        nodes[i] = {"data": d, "children": [[j, local_derivative], ...]}; the last node is the root.
        """
        built, log = [], []
        for index, spec in enumerate(nodes):
            children = [(built[j], coef) for j, coef in spec["children"]]
            node = self.Value(spec["data"], tuple(c for c, _ in children), "f" if children else "")
            node._backward = record_and_pass(index, node, children, log)
            built.append(node)
        for index, grad in pregrads:
            built[index].grad = grad
        for _ in range(calls):
            built[-1].backward()
        return {"grads": numbers([v.grad for v in built], "grad"), "calls": log}

    # ------------------------------------------------------------------ nn

    def build_model(self, kind, args, kwargs):
        cls = {"neuron": "Neuron", "layer": "Layer", "mlp": "MLP"}[kind]
        return getattr(self.module("nn"), cls)(*args, **kwargs)

    def cmd_model_structure(self, kind, args, kwargs=None, with_parameters=True):
        """What the contract says a model is made of, and (with_parameters) how parameters() lists it."""
        model = self.build_model(kind, args, kwargs or {})
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

    def cmd_model_forward(self, kind, args, params, x, upstream, kwargs=None, x_as_values=True):
        """Forward with injected parameters (set through the contract's attributes), then trusted backward."""
        model = self.build_model(kind, args, kwargs or {})
        neurons = neurons_of(model, kind)
        set_per_neuron(neurons, params, "data")
        inputs = [self.Value(v) for v in x] if x_as_values else list(x)
        out = model(inputs)
        single = isinstance(out, self.Value)
        outs = [out] if single else list(out)
        if not all(isinstance(o, self.Value) for o in outs):
            raise WrongType(f"{kind} returned {type(out).__name__}, expected a Value or a list of Values")
        loss = outs[0] * upstream[0]
        for o, u in zip(outs[1:], upstream[1:]):
            loss = loss + o * u
        self.backpropagate(loss, 1.0)
        return {
            "single": single,
            "out": numbers([o.data for o in outs], "output"),
            "param_grads": per_neuron(neurons, "grad"),
            "x_grads": numbers([v.grad for v in inputs], "input grad") if x_as_values else [],
        }

    def cmd_zero_grad(self, kind, args, grads):
        model = self.build_model(kind, args, {})
        neurons = neurons_of(model, kind)
        set_per_neuron(neurons, grads, "grad")
        data = per_neuron(neurons, "data")
        model.zero_grad()
        return {"grads": per_neuron(neurons, "grad"), "data_kept": per_neuron(neurons, "data") == data}

    # ------------------------------------------------------------------ training

    def scalar_loss(self, fn_name, values, *rest):
        vs = [self.Value(v) for v in values]
        loss = getattr(self.module("train"), fn_name)(vs, *rest)
        if not isinstance(loss, self.Value):
            raise WrongType(f"{fn_name}() returned a {type(loss).__name__}, expected a Value")
        self.backpropagate(loss, 1.0)
        return {"data": number(loss.data, "loss"), "grads": numbers([v.grad for v in vs], "grad")}

    def cmd_mse_loss(self, ypred, ys):
        return self.scalar_loss("mse_loss", ypred, ys)

    def cmd_l2_penalty(self, params, lam):
        return self.scalar_loss("l2_penalty", params, lam)

    def cmd_sgd_step(self, params, lr):
        ps = []
        for data, grad in params:
            p = self.Value(data)
            p.grad = grad
            ps.append(p)
        self.module("train").sgd_step(ps, lr)
        return [[number(p.data, "data"), number(p.grad, "grad")] for p in ps]

    def cmd_train(self, params, xs, ys, epochs, lr, lam):
        model = LinearModel(self.Value, params)
        losses = self.module("train").train(model, xs, ys, epochs, lr, lam)
        if not isinstance(losses, list):
            raise WrongType(f"train() returned a {type(losses).__name__}, expected a list of floats")
        return {
            "losses": numbers(losses, "losses"),
            "params": numbers([p.data for p in model.parameters()], "parameter"),
        }

    # ------------------------------------------------------------------ public tests

    def cmd_public_test(self, folder, module, name):
        """Run one public test (`grader check`); an AssertionError may carry its feedback in `.feedback`."""
        fn = getattr(import_test_module(os.path.join(self.root, folder), module), name)
        try:
            fn()
        except AssertionError as exc:
            return {"status": "failed", "feedback": public_feedback(getattr(exc, "feedback", None)),
                    "text": str(exc)[:2000]}
        except NotImplementedError as exc:
            return {"status": "todo", "feedback": None, "text": str(exc)[:500]}
        return {"status": "passed", "feedback": None, "text": ""}


PUBLIC_FEEDBACK_PARAMS = ("what", "inputs", "expected", "got")


def public_feedback(feedback):
    """A public check's feedback as texts (the grader words it): {"id", "params"} or None."""
    if not isinstance(feedback, dict) or not isinstance(feedback.get("params"), dict):
        return None
    params = feedback["params"]
    return {"id": str(feedback.get("id"))[:64],
            "params": {k: str(params[k])[:2000] for k in PUBLIC_FEEDBACK_PARAMS if k in params}}


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


def import_test_module(folder, name):
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


# ---------------------------------------------------------------------- errors and the sandbox loop

STUDENT_FILES = ("engine.py", "nn.py", "train.py")


def describe_exception(exc):
    """Type, message and the student's own frames only (file, line, code), innermost last."""
    import traceback  # only when something failed: a sandbox starts faster without it

    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        name = os.path.basename(frame.filename)
        if name in STUDENT_FILES or "/tests/" in frame.filename:
            frames.append({"file": name[:200], "line": frame.lineno or 0, "function": frame.name[:200],
                           "code": (frame.line or "")[:300]})
    if isinstance(exc, SyntaxError) and exc.filename:
        frames.append({"file": os.path.basename(exc.filename)[:200], "line": exc.lineno or 0, "function": "",
                       "code": (exc.text or "").strip()[:300]})
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return {
        "type": type(exc).__name__[:100],
        "harness": isinstance(exc, WrongType),
        "message": message[:1000],
        "traceback": frames[-8:],
    }


class CappedOutput:
    """Stands in for sys.stdout/sys.stderr: keeps the first `limit` characters a call prints."""

    def __init__(self, limit):
        self.limit, self.parts, self.size = limit, [], 0

    def write(self, text):
        text = str(text)
        if self.size < self.limit:
            self.parts.append(text[: self.limit - self.size])
        self.size += len(text)
        return len(text)

    def flush(self):
        pass

    def take(self):
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        return text


def serve(code_dir, output_limit=65536, course_engine=False):
    # The protocol gets private copies of stdin/stdout; fd 0 and 1 then lead nowhere, so nothing student code
    # prints (print, os.write(1, ...), a subprocess) can be taken for a reply.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    output = CappedOutput(output_limit)
    sys.stdout = sys.stderr = output
    sys.path.insert(0, code_dir)

    def ask(kind, **payload):
        """One question to the grader inside the current request; its one-line answer comes back on stdin.
        The grader decides which questions a request may ask and refuses the rest."""
        replies.write(json.dumps({"ask": kind, **payload}) + "\n")
        replies.flush()
        answer = json.loads(requests.readline() or "null")
        if not isinstance(answer, dict) or "refused" in answer:
            why = answer.get("refused") if isinstance(answer, dict) else "no answer"
            raise WrongType(f"the grader could not answer ({why})")
        return answer

    session = Session(importlib.import_module, code_dir, ask, course_engine)
    for line in requests:
        request = json.loads(line)
        try:
            reply = {"ok": True, "value": session.run(request["cmd"], request["args"])}
        except BaseException as exc:  # noqa: B036 - SystemExit and friends are the student's, not ours
            reply = {"ok": False, "error": describe_exception(exc)}
        reply["output"] = output.take()
        try:
            text = json.dumps(reply)
        except (TypeError, ValueError) as exc:
            text = json.dumps({"ok": False, "error": describe_exception(WrongType(str(exc))), "output": ""})
        replies.write(text + "\n")
        replies.flush()


if __name__ == "__main__":
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    # CODE_DIR OUTPUT_LIMIT [course-engine]
    serve(sys.argv[1], int(sys.argv[2]), course_engine=sys.argv[3:] == ["course-engine"])
