"""Training: a loss to minimise, a penalty on large weights, and gradient descent."""
from engine import Value


def mse_loss(ypred, ys):
    """Mean squared error: the average of (prediction - target) ** 2."""
    total = Value(0.0)
    for yp, y in zip(ypred, ys):
        diff = yp - y
        total = total + diff ** 2
    return total / len(ys)


def l2_penalty(params, lam):
    """L2 regularisation: lam times the sum of the squared parameters."""
    total = Value(0.0)
    for p in params:
        total = total + p ** 2
    return lam * total


def sgd_step(params, lr):
    """One step of gradient descent: move every parameter against its gradient."""
    for p in params:
        p.data = p.data - lr * p.grad


def train(model, xs, ys, epochs, lr, lam=0.0):
    """Fit model to (xs, ys) by full-batch gradient descent; return the loss of every epoch."""
    losses = []
    for epoch in range(epochs):
        # forward pass over the whole data set
        ypred = []
        for x in xs:
            ypred.append(model(x))
        loss = mse_loss(ypred, ys) + l2_penalty(model.parameters(), lam)

        # backward pass: clear the old gradients first, backward() only adds
        model.zero_grad()
        loss.backward()
        losses.append(loss.data)

        # update
        sgd_step(model.parameters(), lr)
    return losses
