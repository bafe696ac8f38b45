"""The run's metric beside its loss: accuracy for classes, R² for numbers, on the training
and validation data after every epoch (or every ``--score-every`` epochs), for the progress
lines, history.json and the summary. Per epoch on at most SAMPLE_ROWS rows of each (the same
seeded rows every epoch), so scoring never costs more than a bounded forward pass; the summary
at the end scores every row."""

from __future__ import annotations

import numpy as np

from ..metrics import LABELS, score

SAMPLE_ROWS = 10_000


class Scores:
    """``metric`` of ``net`` on ``train`` = (X, Y) and, where given, ``validation`` after each
    epoch; ``prior`` (a checkpoint's history) holds the epochs before a resumed run;
    ``score`` is :func:`bpgpu.metrics.score` or its data-parallel twin (cli/ranks.py)."""

    def __init__(self, metric: str, net, train, validation=None, prior=None, score=score, every=1,
                 rows=SAMPLE_ROWS):
        self.metric, self.net, self.train, self.validation = metric, net, train, validation
        self.score, self.every = score, every
        self.sampled = [_sample(net.backend, data, rows, seed) for seed, data in enumerate((train, validation))]
        prior = prior or {}
        self.history = {metric: list(prior.get(metric, [])), f"val_{metric}": list(prior.get(f"val_{metric}", []))}

    def update(self, epoch: int) -> None:
        """Score the network as it is now, after ``epoch`` (0-based), on the sampled rows; None
        in the history for an epoch ``every`` skips."""
        for key, data in zip((self.metric, f"val_{self.metric}"), self.sampled):
            if data is not None:
                scored = (epoch + 1) % self.every == 0
                self.history[key].append(self.score(self.net, *data, self.metric) if scored else None)

    def latest(self) -> dict[str, float]:
        """{"accuracy": 0.97, "validation accuracy": 0.95} of the last epoch scored."""
        label = LABELS[self.metric]
        found = {}
        for key, name in ((self.metric, label), (f"val_{self.metric}", f"validation {label}")):
            if self.history[key] and self.history[key][-1] is not None:
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


def _sample(backend, data, rows: int, seed: int):
    """(X, Y) itself, or at most ``rows`` of its rows, drawn once (seeded) and kept in order."""
    if data is None or data[0].shape[0] <= rows:
        return data
    keep = np.sort(np.random.default_rng([seed, 2]).choice(data[0].shape[0], rows, replace=False))
    keep = backend.asarray(keep, "int64")
    return tuple(backend.xp.take(A, keep, axis=0) for A in data)
