"""micrograd-grader: grade a micrograd-style autograd assignment safely and fast."""

__version__ = "0.1.0"
