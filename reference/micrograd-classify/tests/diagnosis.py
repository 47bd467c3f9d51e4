"""Why a result is wrong: the explanations of `grader check` (these public tests) and of the hidden tests alike.

Each function compares what a student's code gave with what was expected and returns the message that says
what is wrong, {"id": ..., "params": ...} (worded in English or Chinese from messages.toml), or None when they
agree. Standard library only, and no solution logic: every expected value comes from the caller.
"""
import math

REL_TOL, ABS_TOL = 1e-6, 1e-9


def close(got, want):
    return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def all_close(got, want):
    return len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))


def message(message_id, **params):
    return {"id": message_id, "params": params}


def unstable(loss, **inputs):
    """A loss (bce, softmax or cross_entropy) that raised, or gave a number that is not finite, on large logits."""
    return message(f"{loss}_unstable", **inputs)


# ---------------------------------------------------------------------- losses

def bce(z, y, want_data, want_grad, got_data, got_grad, flipped_data=None, extreme=False):
    """bce_with_logits(z, y) and dloss/dz; `flipped_data`: the loss for the other label (1 - y)."""
    if not close(got_data, want_data):
        if flipped_data is not None and close(got_data, flipped_data) and not close(flipped_data, want_data):
            return message("bce_label_flipped", z=z, y=y, flipped=1 - y, expected=want_data, got=got_data)
        return message("bce_unstable_value" if extreme else "bce_value", z=z, y=y, expected=want_data, got=got_data)
    if not close(got_grad, want_grad):
        if got_grad == 0.0:
            return message("bce_no_gradient", z=z, y=y, expected=want_grad)
        return message("bce_gradient", z=z, y=y, expected=want_grad, got=got_grad)
    return None


def softmax(logits, upstream, want_data, want_grads, got_data, got_grads, extreme=False):
    """softmax(logits), and the logits' gradients when the probabilities get `upstream` gradients."""
    if len(got_data) != len(logits):
        return message("softmax_length", expected=len(logits), got=len(got_data))
    if not all_close(got_data, want_data):
        return message("softmax_unstable_value" if extreme else "softmax_value", logits=logits, expected=want_data,
                       got=got_data)
    if not all_close(got_grads, want_grads):
        return message("softmax_gradient", logits=logits, upstream=upstream, expected=want_grads, got=got_grads)
    return None


def cross_entropy(logits, label, want_data, want_grads, got_data, got_grads, extreme=False):
    if not close(got_data, want_data):
        if close(got_data, -want_data) and not close(want_data, 0.0):
            return message("cross_entropy_sign", logits=logits, label=label, expected=want_data, got=got_data)
        return message("cross_entropy_unstable_value" if extreme else "cross_entropy_value", logits=logits,
                       label=label, expected=want_data, got=got_data)
    if not all_close(got_grads, want_grads):
        if all(g == 0.0 for g in got_grads):
            return message("cross_entropy_no_gradient", logits=logits, label=label, expected=want_grads)
        return message("cross_entropy_gradient", logits=logits, label=label, expected=want_grads, got=got_grads)
    return None


def accuracy(rows, labels, want, got, message_id="accuracy_wrong"):
    """`message_id` says which rule the case is about: accuracy_wrong, accuracy_ties or accuracy_single_logit."""
    if not close(got, want):
        return message(message_id, rows=rows, labels=labels, expected=want, got=got)
    return None


# ---------------------------------------------------------------------- Dropout

def dropout(p, x, draws, want_out, got_out, want_grads, got_grads, got_draws, form_kept, single=False):
    """Dropout(p)(x, True, rng) with rng's `draws`; the gradients are those of sum(outputs) for x."""
    if not form_kept:
        return message("dropout_form", given=message("given.value" if single else "given.list"))
    if got_draws != len(x):
        return message("dropout_draws", p=p, expected=len(x), got=got_draws)
    if not all_close(got_out, want_out):
        kept = [d >= p for d in draws]
        shown = {"p": p, "x": x, "expected": want_out, "got": got_out}
        if all_close(got_out, [v if k else 0.0 for v, k in zip(x, kept)]):
            return message("dropout_no_scaling", **shown)
        if len(got_out) == len(kept) and [o != 0.0 for o in got_out] != kept:
            return message("dropout_keep_rule", draws=[round(d, 3) for d in draws], **shown)
        return message("dropout_output", draws=[round(d, 3) for d in draws], **shown)
    if not all_close(got_grads, want_grads):
        return message("dropout_gradient", p=p, expected=want_grads, got=got_grads)
    return None


def dropout_off(p, training, x, got_draws, got_out, form_kept, want_grads, got_grads):
    """Dropout(p)(x, training, rng) when it must do nothing: p = 0 or training False."""
    if got_draws != 0:
        return message("dropout_off_draws", p=p, training=training, got=got_draws)
    if not form_kept or not all_close(got_out, x) or not all_close(got_grads, want_grads):
        return message("dropout_off_changes", p=p, training=training, x=x, got=got_out)
    return None


# ---------------------------------------------------------------------- train_classifier

# The classic mistakes, each a way to run train_classifier wrongly; a caller gives the run each one makes.
MISTAKES = ("sum_not_mean", "val_before_update", "no_l2", "l2_in_val", "dropout_in_val", "dropout_on_last",
            "ties_improve", "restore_last", "stop_late", "stop_early", "restore_without_patience")


def same_run(a, b):
    return (a["best_epoch"] == b["best_epoch"] and a["draws"] == b["draws"]
            and all_close(a["train_loss"], b["train_loss"]) and all_close(a["val_loss"], b["val_loss"])
            and all_close(a["params"], b["params"]))


def train_classifier(setting, patience, lam, dropout_p, want, got, mistakes):
    """A run of train_classifier ({"train_loss", "val_loss", "best_epoch", "params", "draws"}) described by
    `setting` (e.g. "MLP(2, [4, 2]), epochs = 3, lr = 0.5, lam = 0.01"); `mistakes`: mistake -> its run."""
    if same_run(got, want):
        return None
    for mistake in MISTAKES:
        if mistake in mistakes and same_run(got, mistakes[mistake]):
            return mistake_message(mistake, patience, lam, got, want)
    where = {"setting": setting}
    for key, message_id in (("train_loss", "classifier_loss_trajectory"), ("val_loss", "classifier_val_trajectory")):
        epoch = next((i for i, (g, w) in enumerate(zip(got[key], want[key])) if not close(g, w)), None)
        if epoch is not None:
            return message(message_id, epoch=epoch, expected=want[key][epoch], got=got[key][epoch], **where)
    if len(got["val_loss"]) != len(want["val_loss"]) or len(got["train_loss"]) != len(want["train_loss"]):
        return message("classifier_epochs_run", expected=len(want["val_loss"]),
                       got=max(len(got["val_loss"]), len(got["train_loss"])), **where)
    if got["draws"] != want["draws"]:
        return message("classifier_draws", p=dropout_p, expected=want["draws"], got=got["draws"])
    if got["best_epoch"] != want["best_epoch"]:
        return message("classifier_best_epoch", expected=want["best_epoch"], got=got["best_epoch"],
                       val_loss=want["val_loss"])
    return message("classifier_final_parameters", expected=want["params"], got=got["params"], **where)


def mistake_message(mistake, patience, lam, got, want):
    last = {"expected": len(want["val_loss"]) - 1, "got": len(got["val_loss"]) - 1}
    params = {
        "sum_not_mean": {}, "val_before_update": {}, "ties_improve": {"patience": patience},
        "no_l2": {"lam": lam}, "l2_in_val": {"lam": lam},
        "dropout_in_val": {"expected": want["draws"], "got": got["draws"]},
        "dropout_on_last": {"expected": want["draws"], "got": got["draws"]},
        "restore_last": {"best_epoch": want["best_epoch"]},
        "restore_without_patience": {"best_epoch": want["best_epoch"]},
        "stop_late": {"patience": patience, **last}, "stop_early": {"patience": patience, **last},
    }[mistake]
    message_id = {"restore_last": "classifier_restores_last",
                  "restore_without_patience": "classifier_restores_without_patience"}.get(mistake,
                                                                                          "classifier_" + mistake)
    return message(message_id, **params)
