"""`grader check` on the typical mistakes of the first assignment: each gets feedback that names the function and
the idea, with the same explanations as the hidden tests, and no other function is blamed for it."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORRECT = ROOT / "submissions" / "micrograd" / "alice_correct"

# (file, correct code, the mistake, the function it breaks, words of its feedback that say the idea)
MISTAKES = {
    "overwrite": ("engine.py", "self.grad += out.grad * other.data", "self.grad = out.grad * other.data",
                  "Value.__mul__", "use +=, not ="),
    "no_upstream": ("engine.py", "self.grad += (1 - t**2) * out.grad", "self.grad += (1 - t**2)",
                    "Value.tanh", "multiply it by out.grad"),
    "tanh_derivative": ("engine.py", "self.grad += (1 - t**2) * out.grad", "self.grad += (1 - t) * out.grad",
                        "Value.tanh", "tanh backward is wrong: for x = 0.5 and upstream gradient 1.75"),
    "no_visited_set": ("engine.py", "if v not in visited:", "if True:", "Value.backward", "keep a visited set"),
    "no_reversed": ("engine.py", "for v in reversed(topo):", "for v in topo:", "Value.backward",
                    "did you forget reversed()?"),
    "relu_at_zero": ("engine.py", "(out.data > 0) * out.grad", "(self.data >= 0) * out.grad", "Value.relu",
                     "for x = 0 and upstream gradient"),
    "bias_in_call": ("nn.py", "act = self.b\n", "act = self.b * 0\n", "Neuron.__call__",
                     "what it gives without the biases"),
    "bias_in_parameters": ("nn.py", "params.append(self.b)", "pass", "Neuron.parameters",
                           "the bias of each neuron is missing?"),
    "every_layer_nonlinear": ("nn.py", "nonlin=not is_last", "nonlin=True", "MLP.__init__",
                              "every layer must be non-linear (relu) except the last"),
    "no_zero_grad": ("train.py", "        model.zero_grad()\n", "", "train",
                     "did you zero the gradients (model.zero_grad()) before backward()?"),
    "sgd_climbs": ("train.py", "p.data = p.data - lr * p.grad", "p.data = p.data + lr * p.grad", "sgd_step",
                   "sgd_step must do p.data -= lr * p.grad"),
}


def check(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "check", str(folder), *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def with_mistake(tmp_path: Path, file: str, correct: str, mistake: str) -> Path:
    folder = tmp_path / "work"
    shutil.copytree(CORRECT, folder)
    text = (folder / file).read_text(encoding="utf-8")
    assert correct in text
    (folder / file).write_text(text.replace(correct, mistake, 1), encoding="utf-8")
    return folder


def states(stdout: str) -> dict[str, str]:
    """function -> its mark (✓ done, ✗ wrong, · not written yet, - not checked because of another)."""
    return {line[2:20].strip(): line[0] for line in stdout.splitlines() if line[:1] and line[0] in "✓✗·-"}


@pytest.mark.parametrize("name", MISTAKES)
def test_each_typical_mistake_names_its_function_and_the_idea(tmp_path, name):
    file, correct, mistake, function, idea = MISTAKES[name]
    result = check(with_mistake(tmp_path, file, correct, mistake))
    assert result.returncode == 1, result.stdout + result.stderr
    marks = states(result.stdout)
    assert [f for f, mark in marks.items() if mark == "✗"] == [function], result.stdout  # nobody else is blamed
    lines = result.stdout.splitlines()
    feedback = lines[next(i for i, line in enumerate(lines) if line.startswith(f"✗ {function} ")) + 1]
    assert idea in feedback, feedback
    assert "for  " not in result.stdout


def test_a_correct_submission_has_every_function_done(tmp_path):
    result = check(CORRECT)
    assert result.returncode == 0
    assert "21 of 21 functions done, 35 of 35 public checks passed" in result.stdout


def test_functions_that_need_a_failing_one_are_not_blamed_for_it(tmp_path):
    # __add__ overwrites: backward()'s test through operations, the losses and train() need it.
    folder = with_mistake(tmp_path, "engine.py", "other.grad += 1.0 * out.grad", "other.grad = 1.0 * out.grad")
    marks = states(check(folder).stdout)
    assert marks["Value.__add__"] == "✗"
    assert {f for f, mark in marks.items() if mark == "-"} == {"Value.backward", "mse_loss", "l2_penalty", "train"}
    assert all(mark == "✓" for f, mark in marks.items() if f not in
               {"Value.__add__", "Value.backward", "mse_loss", "l2_penalty", "train"})


def test_a_hang_in_backward_is_one_timeout(tmp_path):
    hang = "        while True:\n            pass\n"
    folder = with_mistake(tmp_path, "engine.py", "        build_topo(self)\n", hang)
    result = check(folder)
    assert result.returncode == 1
    assert result.stdout.count("did not finish") == 1, result.stdout
    marks = states(result.stdout)
    assert marks["Value.backward"] == "✗" and {marks[f] for f in ("mse_loss", "train")} == {"-"}


def test_what_a_failing_check_printed_is_shown_after_its_feedback(tmp_path):
    folder = with_mistake(tmp_path, "engine.py", "self.grad += (1 - t**2) * out.grad",
                          "print('tanh says', t)\n            self.grad += (1 - t) * out.grad")
    lines = check(folder).stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("✗ Value.tanh "))
    assert lines[at + 2].strip() == "what your code printed:"
    assert lines[at + 3].startswith("    | tanh says 0.46211715726")


def test_accumulation_feedback_names_the_gradient_held_before_the_call(tmp_path):
    folder = with_mistake(tmp_path, "engine.py", "self.grad += 1.0 * out.grad", "self.grad = 1.0 * out.grad")
    result = check(folder)
    assert "with a.grad = 0.75, b.grad = -1.25 held before the call" in result.stdout, result.stdout


def test_feedback_in_chinese_uses_the_same_explanations(tmp_path):
    file, correct, mistake, function, _ = MISTAKES["no_visited_set"]
    result = check(with_mistake(tmp_path, file, correct, mistake), "--lang", "zh")
    assert "请用 visited 集合" in result.stdout and "已完成 17/21 个函数" in result.stdout, result.stdout
