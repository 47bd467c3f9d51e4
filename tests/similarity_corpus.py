"""The similarity test set: honest micrograd solutions written independently in different styles, and plagiarised
variants made from them by programmatic transformations (used by tests/test_similarity.py and bench/similarity.py).

Honest: `alice` (submissions/micrograd/alice_correct, the course notes' style) and five solutions below, each the
skeleton (assignments/micrograd/) with its `raise NotImplementedError(...)` lines replaced, written on purpose in
another style: comprehensions vs loops, helper functions, lambdas, recursive vs explicit-stack vs Kahn's
topological sort, `math` vs `**`, while vs for. All are correct (tests/test_similarity.py checks their gradients
and a training run against the reference's).

Transformations (each alone and all combined): `rename` (every identifier the student introduced), `reorder`
(functions and methods in reverse order), `comments` (comments dropped and others added, blank lines, two-space
indentation), `deadcode` (an unused statement before every third written statement).
"""
from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import textwrap
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKELETON = ROOT / "assignments" / "micrograd"
ALICE = ROOT / "submissions" / "micrograd" / "alice_correct"
FILES = ("engine.py", "nn.py", "train.py")
_RAISE = re.compile(r'^(?P<indent>\s*)raise NotImplementedError\("(?P<name>[^"]+) is not written yet"\)\s*$')

SOLUTIONS: dict[str, dict[str, str]] = {
    # terse: comprehensions and one-liners everywhere, recursive topological sort in a nested function
    "ben": {
        "Value.__add__: _backward": "self.grad, other.grad = self.grad + out.grad, other.grad + out.grad",
        "Value.__mul__: _backward": "self.grad = self.grad + out.grad * other.data\n"
                                    "other.grad = other.grad + out.grad * self.data",
        "Value.__pow__: _backward": "self.grad = self.grad + out.grad * (other * pow(self.data, other - 1))",
        "Value.exp: _backward": "self.grad = self.grad + out.grad * out.data",
        "Value.log: _backward": "self.grad = self.grad + out.grad * self.data ** -1",
        "Value.relu: _backward": "self.grad = self.grad + (out.grad if self.data > 0 else 0)",
        "Value.tanh: _backward": "self.grad = self.grad + out.grad * (1 - out.data * out.data)",
        "Value.sigmoid: _backward": "self.grad = self.grad + out.grad * out.data * (1 - out.data)",
        "Value.backward": """\
order = []
seen = set()

def visit(node):
    if node in seen:
        return
    seen.add(node)
    for parent in node._prev:
        visit(parent)
    order.append(node)

visit(self)
self.grad = 1
for node in order[::-1]:
    node._backward()""",
        "Module.zero_grad": "for p in self.parameters(): p.grad = 0",
        "Neuron.__call__": "z = sum([w * v for w, v in zip(self.w, x)]) + self.b\n"
                           "return z.relu() if self.nonlin else z",
        "Neuron.parameters": "return [*self.w, self.b]",
        "Layer.__call__": "res = list(map(lambda n: n(x), self.neurons))\nreturn res if len(res) > 1 else res[0]",
        "Layer.parameters": "return sum([n.parameters() for n in self.neurons], [])",
        "MLP.__init__": "dims = [nin, *nouts]\nn = len(nouts)\n"
                        "self.layers = [Layer(a, b, nonlin=(k < n - 1))\n"
                        "               for k, (a, b) in enumerate(zip(dims, dims[1:]))]",
        "MLP.__call__": "for l in self.layers: x = l(x)\nreturn x",
        "MLP.parameters": "return sum([l.parameters() for l in self.layers], [])",
        "mse_loss": "errs = [(a - b) * (a - b) for a, b in zip(ypred, ys)]\nreturn sum(errs) * (1.0 / len(errs))",
        "l2_penalty": "return sum([p * p for p in params], Value(0.0)) * lam",
        "sgd_step": "for p in params: p.data += -lr * p.grad",
        "train": """\
hist = []
for epoch in range(epochs):
    loss = mse_loss([model(x) for x in xs], ys) + l2_penalty(model.parameters(), lam)
    model.zero_grad(); loss.backward(); sgd_step(model.parameters(), lr)
    hist += [loss.data]
return hist""",
    },
    # helpers: one accumulation helper used by every _backward, Kahn's algorithm with in-degrees for the order
    "chloe": {
        "Value.__add__: _backward": "_accumulate(self, out.grad)\n_accumulate(other, out.grad)",
        "Value.__mul__: _backward": "_accumulate(self, other.data * out.grad)\n"
                                    "_accumulate(other, self.data * out.grad)",
        "Value.__pow__: _backward": "derivative = other * self.data ** (other - 1)\n"
                                    "_accumulate(self, derivative * out.grad)",
        "Value.exp: _backward": "_accumulate(self, math.exp(min(self.data, 709.0)) * out.grad)",
        "Value.log: _backward": "_accumulate(self, out.grad / self.data)",
        "Value.relu: _backward": "if self.data > 0:\n    _accumulate(self, out.grad)",
        "Value.tanh: _backward": "_accumulate(self, (1.0 - t * t) * out.grad)",
        "Value.sigmoid: _backward": "_accumulate(self, s * (1.0 - s) * out.grad)",
        "Value.backward": """\
# Kahn's algorithm: count how many consumers each node has, release a node once all of them are done
consumers = {}
pending = [self]
while pending:
    node = pending.pop()
    for child in node._prev:
        if child not in consumers:
            consumers[child] = 0
            pending.append(child)
        consumers[child] += 1
self.grad = 1.0
ready = [self]
while ready:
    node = ready.pop()
    node._backward()
    for child in node._prev:
        consumers[child] -= 1
        if consumers[child] == 0:
            ready.append(child)""",
        "Module.zero_grad": "params = self.parameters()\nfor i in range(len(params)):\n    params[i].grad = 0.0",
        "Neuron.__call__": """\
total = Value(0.0)
i = 0
while i < len(self.w):
    total = total + self.w[i] * x[i]
    i += 1
total = total + self.b
if not self.nonlin:
    return total
return total.relu()""",
        "Neuron.parameters": "result = list(self.w)\nresult.append(self.b)\nreturn result",
        "Layer.__call__": "values = [neuron(x) for neuron in self.neurons]\n"
                          "if len(values) == 1:\n    return values[0]\n"
                          "return values",
        "Layer.parameters": "collected = []\nfor neuron in self.neurons:\n    collected += neuron.parameters()\n"
                            "return collected",
        "MLP.__init__": """\
self.layers = []
previous = nin
for index, size in enumerate(nouts):
    last = index == len(nouts) - 1
    self.layers.append(Layer(previous, size, nonlin=not last))
    previous = size""",
        "MLP.__call__": "result = x\nfor layer in self.layers:\n    result = layer(result)\nreturn result",
        "MLP.parameters": "collected = []\nfor layer in self.layers:\n    collected += layer.parameters()\n"
                          "return collected",
        "mse_loss": "total = Value(0.0)\nfor prediction, target in zip(ypred, ys):\n"
                    "    difference = prediction - target\n    total = total + difference ** 2\n"
                    "return total / len(ys)",
        "l2_penalty": "squares = Value(0.0)\nfor param in params:\n    squares = squares + param ** 2\n"
                      "return squares * lam",
        "sgd_step": "for param in params:\n    param.data = param.data - lr * param.grad",
        "train": """\
history = []
epoch = 0
while epoch < epochs:
    predictions = [model(sample) for sample in xs]
    objective = mse_loss(predictions, ys)
    if lam:
        objective = objective + l2_penalty(model.parameters(), lam)
    model.zero_grad()
    objective.backward()
    sgd_step(model.parameters(), lr)
    history.append(objective.data)
    epoch += 1
return history""",
        "__module__ engine.py": """\
def _accumulate(node, amount):
    node.grad += amount""",
    },
    # functional: functools.reduce, itertools.chain, an explicit post-order stack with an iterator per node
    "dmitri": {
        "Value.__add__: _backward": "for v in (self, other):\n    v.grad += out.grad",
        "Value.__mul__: _backward": "for v, w in ((self, other), (other, self)):\n    v.grad += w.data * out.grad",
        "Value.__pow__: _backward": "self.grad += out.grad * other * (self.data ** other) / self.data "
                                    "if self.data != 0 else out.grad * other * self.data ** (other - 1)",
        "Value.exp: _backward": "self.grad = out.data * out.grad + self.grad",
        "Value.log: _backward": "self.grad += (1 / self.data) * out.grad",
        "Value.relu: _backward": "self.grad += float(out.data > 0) * out.grad",
        "Value.tanh: _backward": "self.grad += out.grad / math.cosh(x) ** 2 if abs(x) < 300 else 0.0",
        "Value.sigmoid: _backward": "self.grad += out.grad * s - out.grad * s ** 2",
        "Value.backward": """\
post = []
done = set()
stack = [(self, iter(self._prev))]
done.add(self)
while stack:
    top, children = stack[-1]
    nxt = next(children, None)
    if nxt is None:
        stack.pop()
        post.append(top)
    elif nxt not in done:
        done.add(nxt)
        stack.append((nxt, iter(nxt._prev)))
self.grad = 1.0
list(map(lambda n: n._backward(), reversed(post)))""",
        "Module.zero_grad": "list(map(lambda q: setattr(q, 'grad', 0.0), self.parameters()))",
        "Neuron.__call__": "pre = functools.reduce(lambda acc, pair: acc + pair[0] * pair[1], zip(self.w, x), self.b)\n"
                           "return (Value.relu if self.nonlin else lambda v: v)(pre)",
        "Neuron.parameters": "return list(itertools.chain(self.w, [self.b]))",
        "Layer.__call__": "ys = tuple(unit(x) for unit in self.neurons)\nreturn ys[0] if len(ys) == 1 else list(ys)",
        "Layer.parameters": "return list(itertools.chain.from_iterable(u.parameters() for u in self.neurons))",
        "MLP.__init__": "shape = list(itertools.chain([nin], nouts))\n"
                        "self.layers = list(map(lambda j: Layer(shape[j], shape[j + 1], nonlin=j + 1 < len(nouts)),"
                        " range(len(nouts))))",
        "MLP.__call__": "return functools.reduce(lambda acc, layer: layer(acc), self.layers, x)",
        "MLP.parameters": "return list(itertools.chain.from_iterable(map(lambda l: l.parameters(), self.layers)))",
        "mse_loss": "n = len(ys)\nreturn functools.reduce(lambda a, d: a + d * d, "
                    "(p - t for p, t in zip(ypred, ys)), Value(0.0)) * (1 / n)",
        "l2_penalty": "return Value(0.0) + lam * functools.reduce(lambda a, q: a + q * q, params, Value(0.0))",
        "sgd_step": "list(map(lambda q: setattr(q, 'data', q.data - lr * q.grad), params))",
        "train": """\
def step(_):
    out = mse_loss(list(map(model, xs)), ys) + l2_penalty(model.parameters(), lam)
    model.zero_grad()
    out.backward()
    sgd_step(model.parameters(), lr)
    return out.data
return [step(e) for e in range(epochs)]""",
        "__import__ nn.py": "import functools\nimport itertools",
        "__import__ train.py": "import functools",
    },
    # verbose: a local variable for every local derivative, a topological order by depth (longest path)
    "eve": {
        "Value.__add__: _backward": "local_self = 1.0\nlocal_other = 1.0\nself.grad += local_self * out.grad\n"
                                    "other.grad += local_other * out.grad",
        "Value.__mul__: _backward": "local_self = other.data\nlocal_other = self.data\n"
                                    "self.grad += local_self * out.grad\nother.grad += local_other * out.grad",
        "Value.__pow__: _backward": "exponent = other\nlocal = exponent * (self.data ** (exponent - 1))\n"
                                    "self.grad += local * out.grad",
        "Value.exp: _backward": "local = out.data\nself.grad += local * out.grad",
        "Value.log: _backward": "local = 1.0 / self.data\nself.grad += local * out.grad",
        "Value.relu: _backward": "local = 1.0 if self.data > 0 else 0.0\nself.grad += local * out.grad",
        "Value.tanh: _backward": "local = 1.0 - t ** 2\nself.grad += local * out.grad",
        "Value.sigmoid: _backward": "local = s * (1.0 - s)\nself.grad += local * out.grad",
        "Value.backward": """\
# depth of a node = longest path from the output; a node runs after every node of smaller depth
depth = {self: 0}
frontier = [self]
nodes = [self]
while frontier:
    following = []
    for node in frontier:
        for child in node._prev:
            if child not in depth:
                nodes.append(child)
            if depth.get(child, -1) < depth[node] + 1:
                depth[child] = depth[node] + 1
                following.append(child)
    frontier = following
nodes.sort(key=lambda node: depth[node])
self.grad = 1.0
for node in nodes:
    node._backward()""",
        "Module.zero_grad": "all_params = self.parameters()\nfor param in all_params:\n    param.grad = 0.0",
        "Neuron.__call__": """\
weighted = [weight * value for weight, value in zip(self.w, x)]
activation = self.b
for term in weighted:
    activation = activation + term
output = activation.relu() if self.nonlin else activation
return output""",
        "Neuron.parameters": "weights = self.w\nbias = self.b\nreturn weights + [bias]",
        "Layer.__call__": "outputs = []\nfor neuron in self.neurons:\n    output = neuron(x)\n"
                          "    outputs.append(output)\nsingle = len(outputs) == 1\n"
                          "return outputs[0] if single else outputs",
        "Layer.parameters": "all_params = []\nfor neuron in self.neurons:\n    neuron_params = neuron.parameters()\n"
                            "    all_params.extend(neuron_params)\nreturn all_params",
        "MLP.__init__": """\
layer_sizes = [nin]
layer_sizes.extend(nouts)
number_of_layers = len(nouts)
self.layers = []
for position in range(number_of_layers):
    fan_in = layer_sizes[position]
    fan_out = layer_sizes[position + 1]
    nonlinear = position < number_of_layers - 1
    self.layers.append(Layer(fan_in, fan_out, nonlin=nonlinear))""",
        "MLP.__call__": "current = x\nfor layer in self.layers:\n    current = layer(current)\noutput = current\n"
                        "return output",
        "MLP.parameters": "all_params = []\nfor layer in self.layers:\n    layer_params = layer.parameters()\n"
                          "    all_params.extend(layer_params)\nreturn all_params",
        "mse_loss": """\
count = len(ys)
squared_errors = []
for prediction, target in zip(ypred, ys):
    error = prediction - target
    squared_errors.append(error * error)
total = Value(0.0)
for squared in squared_errors:
    total = total + squared
return total / count""",
        "l2_penalty": "total = Value(0.0)\nfor param in params:\n    squared = param * param\n"
                      "    total = total + squared\npenalty = lam * total\nreturn penalty",
        "sgd_step": "for param in params:\n    update = lr * param.grad\n    param.data = param.data - update",
        "train": """\
loss_history = []
for epoch_number in range(epochs):
    predictions = []
    for sample in xs:
        predictions.append(model(sample))
    data_loss = mse_loss(predictions, ys)
    reg_loss = l2_penalty(model.parameters(), lam)
    total_loss = data_loss + reg_loss
    model.zero_grad()
    total_loss.backward()
    sgd_step(model.parameters(), lr)
    loss_history.append(total_loss.data)
return loss_history""",
    },
    # methods and generators: a generator for the topological order, yield-based parameters, math.tanh again
    "farid": {
        "Value.__add__: _backward": "self.grad += 1 * out.grad\nother.grad += 1 * out.grad",
        "Value.__mul__: _backward": "a, b = self, other\na.grad += b.data * out.grad\nb.grad += a.data * out.grad",
        "Value.__pow__: _backward": "self.grad += other * math.pow(self.data, other - 1) * out.grad",
        "Value.exp: _backward": "self.grad += out.grad * math.exp(min(self.data, 709.0))",
        "Value.log: _backward": "self.grad += out.grad * (self.data ** -1)",
        "Value.relu: _backward": "self.grad += out.grad * (0.0 if out.data <= 0 else 1.0)",
        "Value.tanh: _backward": "self.grad += out.grad * (1 - math.tanh(x) ** 2)",
        "Value.sigmoid: _backward": "self.grad += out.grad * (s - s * s)",
        "Value.backward": """\
self.grad = 1.0
for node in list(_postorder(self))[::-1]:
    node._backward()""",
        "__module__ engine.py": """\
def _postorder(root):
    \"\"\"Yield every node after all the nodes it was computed from.\"\"\"
    marked = set()
    todo = [(root, False)]
    while todo:
        current, expanded = todo.pop()
        if expanded:
            yield current
            continue
        if current in marked:
            continue
        marked.add(current)
        todo.append((current, True))
        for prev in current._prev:
            if prev not in marked:
                todo.append((prev, False))""",
        "Module.zero_grad": "for param in self.parameters():\n    param.grad = float(0)",
        "Neuron.__call__": "act = self.b + sum(wi * xi for wi, xi in zip(self.w, x))\nif self.nonlin:\n"
                           "    act = act.relu()\nreturn act",
        "Neuron.parameters": "return list(self._params())",
        "__class__ Neuron": """\
def _params(self):
    yield from self.w
    yield self.b""",
        "Layer.__call__": "outs = [neuron.__call__(x) for neuron in self.neurons]\nreturn outs.pop() if len(outs) == 1 "
                          "else outs",
        "Layer.parameters": "return [param for neuron in self.neurons for param in neuron.parameters()]",
        "MLP.__init__": "self.layers = []\nfor i, (fan_in, fan_out) in enumerate(zip([nin] + nouts[:-1], nouts)):\n"
                        "    self.layers += [Layer(fan_in, fan_out, nonlin=i != len(nouts) - 1)]",
        "MLP.__call__": "h = x\nfor layer in self.layers:\n    h = layer.__call__(h)\nreturn h",
        "MLP.parameters": "return [param for layer in self.layers for param in layer.parameters()]",
        "mse_loss": "assert len(ypred) == len(ys)\nreturn sum(((p - y) ** 2 for p, y in zip(ypred, ys)), Value(0)) "
                    "/ len(ys)",
        "l2_penalty": "if lam == 0:\n    return Value(0.0)\nreturn lam * sum(param ** 2 for param in params)",
        "sgd_step": "for param in params:\n    param.data -= param.grad * lr",
        "train": """\
losses = []
for _ in range(epochs):
    model.zero_grad()
    total = mse_loss([model(x) for x in xs], ys) + l2_penalty(model.parameters(), lam)
    total.backward()
    sgd_step(model.parameters(), lr)
    losses.append(total.data)
return losses""",
    },
}

HONEST = ("alice", *SOLUTIONS)
TRANSFORMS = ("rename", "reorder", "comments", "deadcode", "combined")


def skeleton() -> dict[str, str]:
    return {name: (SKELETON / name).read_text(encoding="utf-8") for name in FILES}


def honest(name: str) -> dict[str, str]:
    """The files of honest solution `name`."""
    if name == "alice":
        return {n: (ALICE / n).read_text(encoding="utf-8") for n in FILES}
    regions = SOLUTIONS[name]
    files = {}
    for file, text in skeleton().items():
        out = []
        for line in text.split("\n"):
            match = _RAISE.match(line)
            if match and match.group("name") in regions:
                out.append(textwrap.indent(regions[match.group("name")], match.group("indent")))
                klass = match.group("name").split(".")[0]
                if f"__class__ {klass}" in regions and match.group("name").endswith(".parameters"):
                    out.append("")
                    out.append(textwrap.indent(regions[f"__class__ {klass}"], "    "))
            else:
                out.append(line)
        text = "\n".join(out)
        if f"__import__ {file}" in regions:
            first_import = re.search(r"^(import|from) ", text, re.M)
            at = first_import.start() if first_import else 0
            text = text[:at] + regions[f"__import__ {file}"] + "\n" + text[at:]
        if f"__module__ {file}" in regions:
            text = text.rstrip("\n") + "\n\n\n" + regions[f"__module__ {file}"] + "\n"
        files[file] = text
    return files


# --- transformations -----------------------------------------------------------------------------------------

def _skeleton_names() -> set[str]:
    names = set(dir(builtins)) | {"math", "random", "functools", "itertools", "self", "key"}
    for text in skeleton().values():
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME:
                names.add(tok.string)
    return names


def rename(files: dict[str, str]) -> dict[str, str]:
    """Every identifier the student introduced (not in the skeleton, not a builtin) gets another name."""
    keep = _skeleton_names()
    out = {}
    for name, text in files.items():
        mapping: dict[str, str] = {}
        pieces = []
        defined = {node.name for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)}
        previous = ""
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME and tok.string not in keep and not keyword.iskeyword(tok.string) \
                    and (previous != "." or tok.string in defined):  # a method of a list is still `append`
                mapping.setdefault(tok.string, f"q{len(mapping)}_{tok.string[::-1]}_x")
                pieces.append((tok, mapping[tok.string]))
            previous = tok.string
        lines = text.split("\n")
        for tok, new in reversed(pieces):
            row, col = tok.start
            line = lines[row - 1]
            lines[row - 1] = line[:col] + new + line[col + len(tok.string):]
        out[name] = "\n".join(lines)
    return out


def _reverse_defs(body: list[ast.stmt], lines: list[str]) -> list[str]:
    """The lines of `body` with its function definitions in reverse order (other statements stay put), and the
    methods of each class reversed too."""
    spans = []
    for node in body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        spans.append((node, start, node.end_lineno or node.lineno))
    out: list[str] = []
    defs = [s for s in spans if isinstance(s[0], (ast.FunctionDef, ast.AsyncFunctionDef))]
    order = iter(reversed(defs))
    for node, start, end in spans:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node, start, end = next(order)
        chunk = lines[start - 1:end]
        if isinstance(node, ast.ClassDef):
            head = lines[start - 1:node.body[0].lineno - 1]
            chunk = head + _reverse_defs(node.body, lines)
        out.extend(chunk + [""])
    return out


def reorder(files: dict[str, str]) -> dict[str, str]:
    """Functions and methods in reverse order (module docstring and imports first, as before)."""
    out = {}
    for name, text in files.items():
        tree = ast.parse(text)
        lines = text.split("\n")
        out[name] = "\n".join(_reverse_defs(tree.body, lines)) + "\n"
    return out


def comments(files: dict[str, str]) -> dict[str, str]:
    """Comments dropped, a comment added after every code line, blank lines doubled, two-space indentation."""
    out = {}
    for name, text in files.items():
        result = []
        drop = {tok.start for tok in tokenize.generate_tokens(io.StringIO(text).readline)
                if tok.type == tokenize.COMMENT}
        for number, line in enumerate(text.split("\n"), start=1):
            cut = next((col for row, col in drop if row == number), None)
            if cut is not None:
                line = line[:cut].rstrip()
                if not line.strip():
                    continue
            stripped = line.lstrip(" ")
            spaces = len(line) - len(stripped)
            line = " " * (spaces // 2) + stripped
            if not stripped:
                result.extend(["", ""])
            elif stripped.endswith((":", ",", "(", "[", "\\")) or '"""' in stripped:
                result.append(line)
            else:
                result.append(line + "  # my own step " + str(number))
        out[name] = "\n".join(result)
    return out


DEAD = ("unused_counter = 0", "if False:\n    print('debug')", "_scratch = [k for k in range(3)]",
        "assert True")


def deadcode(files: dict[str, str]) -> dict[str, str]:
    """An unused statement before every third statement the student wrote (inside the solution functions)."""
    base = skeleton()
    out = {}
    for name, text in files.items():
        skeleton_lines = {ln.strip() for ln in base.get(name, "").split("\n")}
        tree = ast.parse(text)
        starts = sorted({(node.lineno, node.col_offset) for node in ast.walk(tree)
                         if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.ClassDef))
                         and node.col_offset > 0})
        lines = text.split("\n")
        written = [(row, col) for row, col in starts if lines[row - 1].strip() not in skeleton_lines
                   and len(lines[row - 1]) - len(lines[row - 1].lstrip()) == col]  # a statement that starts a line
        for index, (row, col) in enumerate(reversed(written)):
            if index % 3 == 0:
                dead = DEAD[index // 3 % len(DEAD)]
                lines[row - 1:row - 1] = textwrap.indent(dead, " " * col).split("\n")
        out[name] = "\n".join(lines)
    return out


def transform(files: dict[str, str], how: str) -> dict[str, str]:
    if how == "combined":
        return comments(deadcode(reorder(rename(files))))
    return {"rename": rename, "reorder": reorder, "comments": comments, "deadcode": deadcode}[how](files)


def write(folder: Path, student: str, files: dict[str, str]) -> Path:
    path = folder / student
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def write_class(folder: Path, transforms: tuple[str, ...] = TRANSFORMS, honest_names: tuple[str, ...] = HONEST
                ) -> tuple[set[frozenset[str]], set[frozenset[str]]]:
    """Every honest solution, and each transformation of each, as students in `folder`. Returns the plagiarised
    pairs (an original and its variant, and two variants of one original) and the independent pairs."""
    groups: dict[str, list[str]] = {}
    for name in honest_names:
        files = honest(name)
        write(folder, name, files)
        groups[name] = [name]
        for how in transforms:
            write(folder, f"{name}_{how}", transform(files, how))
            groups[name].append(f"{name}_{how}")
    copied = {frozenset((x, y)) for members in groups.values() for x in members for y in members if x < y}
    everyone = [s for members in groups.values() for s in members]
    independent = {frozenset((x, y)) for x in everyone for y in everyone if x < y} - copied
    return copied, independent
