"""Rebuild the demo submission submissions/notebook_student/ (not shipped to students).

The generated notebook with every `raise NotImplementedError(...)` replaced by what a typical student
writes: correct, in a style of its own (recursive topological sort as in the course notes, math.tanh,
explicit loops), except for ONE bug in the training group: train() never calls model.zero_grad(), so
gradients pile up across epochs. Outputs stay empty; submission.json marks it one day late.

    python scripts/make_notebook_submission.py [COURSE_ROOT]
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.generate import build_assignment  # noqa: E402

STUDENT_CODE = {
    "Value.__add__: _backward": """
self.grad += 1.0 * out.grad
other.grad += 1.0 * out.grad
""",
    "Value.__mul__: _backward": """
self.grad += out.grad * other.data
other.grad += out.grad * self.data
""",
    "Value.__pow__: _backward": """
self.grad += out.grad * (other * (self.data ** (other - 1)))
""",
    "Value.exp: _backward": """
self.grad += out.grad * out.data  # e^x is its own derivative
""",
    "Value.log: _backward": """
self.grad += out.grad * (1.0 / self.data)
""",
    "Value.relu: _backward": """
if out.data > 0:
    self.grad += out.grad
""",
    "Value.tanh: _backward": """
self.grad += (1 - math.tanh(self.data) ** 2) * out.grad
""",
    "Value.sigmoid: _backward": """
self.grad += out.grad * out.data * (1 - out.data)
""",
    "Value.backward": """
# topological sort, recursive like in the course notes
topo = []
visited = set()

def build_topo(v):
    if v not in visited:
        visited.add(v)
        for child in v._prev:
            build_topo(child)
        topo.append(v)

build_topo(self)
self.grad = 1.0
for v in reversed(topo):
    v._backward()
""",
    "Module.zero_grad": """
for p in self.parameters():
    p.grad = 0
""",
    "Neuron.__call__": """
act = self.b
for wi, xi in zip(self.w, x):
    act = act + wi * xi
if self.nonlin:
    return act.relu()
return act
""",
    "Neuron.parameters": """
return self.w + [self.b]
""",
    "Layer.__call__": """
outs = []
for neuron in self.neurons:
    outs.append(neuron(x))
if len(outs) == 1:
    return outs[0]
return outs
""",
    "Layer.parameters": """
params = []
for neuron in self.neurons:
    params.extend(neuron.parameters())
return params
""",
    "MLP.__init__": """
sz = [nin] + nouts
self.layers = []
for i in range(len(nouts)):
    last = i == len(nouts) - 1
    self.layers.append(Layer(sz[i], sz[i + 1], nonlin=not last))
""",
    "MLP.__call__": """
for layer in self.layers:
    x = layer(x)
return x
""",
    "MLP.parameters": """
params = []
for layer in self.layers:
    params.extend(layer.parameters())
return params
""",
    "mse_loss": """
n = len(ys)
total = Value(0.0)
for yp, y in zip(ypred, ys):
    total = total + (yp - y) ** 2
return total / n
""",
    "l2_penalty": """
reg = Value(0.0)
for p in params:
    reg = reg + p * p
return reg * lam
""",
    "sgd_step": """
for p in params:
    p.data = p.data - lr * p.grad
""",
    # The bug: no model.zero_grad() before loss.backward().
    "train": """
history = []
for epoch in range(epochs):
    ypred = [model(x) for x in xs]
    loss = mse_loss(ypred, ys) + l2_penalty(model.parameters(), lam)
    loss.backward()
    history.append(loss.data)
    sgd_step(model.parameters(), lr)
return history
""",
}

TODO = re.compile(r'^(?P<indent>[ \t]*)raise NotImplementedError\("(?P<name>.+) is not written yet"\)$', re.M)


def fill(skeleton: str) -> str:
    def student(match: re.Match) -> str:
        code = STUDENT_CODE[match["name"]].strip("\n")
        return "\n".join(match["indent"] + line if line else "" for line in code.split("\n"))
    return TODO.sub(student, skeleton)


def main(course_root: Path = ROOT) -> None:
    import nbformat

    files = build_assignment(course_root)
    nb = nbformat.reads(files["micrograd.ipynb"].decode("utf-8"), as_version=4)
    for cell in nb.cells:
        tag = (cell.metadata.get("tags") or [None])[0]
        if tag in ("engine", "nn", "train"):
            cell.source = f"%%writefile {tag}.py\n" + fill(files[f"{tag}.py"].decode("utf-8"))
    nbformat.validate(nb)
    out = course_root / "submissions" / "notebook_student"
    out.mkdir(parents=True, exist_ok=True)
    (out / "micrograd.ipynb").write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    (out / "submission.json").write_text(json.dumps({"submitted_at": "2026-12-21T10:00:00+08:00"}) + "\n",
                                         encoding="utf-8")
    print(f"wrote {out / 'micrograd.ipynb'} and {out / 'submission.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT)
