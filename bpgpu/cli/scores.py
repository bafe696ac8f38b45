"""The run's metric beside its loss: accuracy for classes, R² for numbers, on the training
and validation data after every epoch, for the progress lines, history.json and the summary."""

from __future__ import annotations

from ..metrics import score

LABELS = {"accuracy": "accuracy", "r2": "R²"}


class Scores:
    """``metric`` of ``net`` on ``train`` = (X, Y) and, where given, ``validation`` after each
    epoch; ``prior`` (a checkpoint's history) holds the epochs before a resumed run;
    ``score`` is :func:`bpgpu.metrics.score` or its data-parallel twin (cli/ranks.py)."""

    def __init__(self, metric: str, net, train, validation=None, prior=None, score=score):
        self.metric, self.net, self.train, self.validation = metric, net, train, validation
        self.score = score
        prior = prior or {}
        self.history = {metric: list(prior.get(metric, [])), f"val_{metric}": list(prior.get(f"val_{metric}", []))}

    def update(self) -> None:
        """Score the network as it is now (after an epoch)."""
        self.history[self.metric].append(self.score(self.net, *self.train, self.metric))
        if self.validation is not None:
            self.history[f"val_{self.metric}"].append(self.score(self.net, *self.validation, self.metric))

    def latest(self) -> dict[str, float]:
        """{"accuracy": 0.97, "validation accuracy": 0.95} of the last epoch scored."""
        label = LABELS[self.metric]
        found = {}
        for key, name in ((self.metric, label), (f"val_{self.metric}", f"validation {label}")):
            if self.history[key]:
                found[name] = self.history[key][-1]
        return found

    def text(self) -> str:
        """The scores of the weights the network holds now, as "accuracy 0.97, validation
        accuracy 0.95": the last epoch's, unless early stopping or divergence restored others."""
        label = LABELS[self.metric]
        found = [f"{label} {self.score(self.net, *self.train, self.metric):.4g}"]
        if self.validation is not None:
            found.append(f"validation {label} {self.score(self.net, *self.validation, self.metric):.4g}")
        return ", ".join(found)
