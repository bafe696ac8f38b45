"""scikit-learn's end-of-epoch rules, run as the per-epoch callback of ``Network.fit``.

``Network.fit`` runs the epochs and mini-batches; after each epoch this records what
scikit-learn records (``n_iter_``, ``t_``, ``loss_curve_``, validation scores), applies the
learning-rate schedule, and decides as scikit-learn does whether to stop: no improvement
greater than ``tol`` for more than ``n_iter_no_change`` epochs, in the training loss or,
with ``early_stopping``, in the validation score.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .. import schedules
from . import _layout


class EpochRules:
    """The callback: ``rules(epoch, history)`` returns True to stop training.

    Args:
        est: the estimator whose fitted attributes are updated.
        net: the bpgpu Network being trained.
        opt: its optimiser (the schedule changes its ``lr``).
        schedule: a :mod:`bpgpu.schedules` schedule.
        n_samples: training examples per epoch (for ``t_``).
        validation: None, or (X_val on the device (m, s0), y_val as the estimator scores it,
            the validation rows' sample weights (m,) or None).
        incremental: True for ``partial_fit`` (one epoch, no ConvergenceWarning).
    """

    def __init__(self, est, net, opt, schedule, n_samples, validation, incremental):
        self.est, self.net, self.opt, self.schedule = est, net, opt, schedule
        self.n_samples, self.validation, self.incremental = n_samples, validation, incremental

    def __call__(self, epoch, history) -> bool:
        self._record(history.loss[-1])
        return self._after_epoch()

    def diverged(self) -> None:
        """The epoch just run produced a non-finite loss or weight (bpgpu stopped it and put
        the last good weights back): record it as scikit-learn would see it, a NaN loss and,
        with early stopping, a NaN validation score."""
        self._record(math.nan)
        if self.validation is not None:
            self.est.validation_scores_.append(math.nan)

    def _record(self, loss: float) -> None:
        est = self.est
        est.n_iter_ += 1
        est.loss_ = loss
        est.t_ += self.n_samples
        est.loss_curve_.append(loss)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))

    def _after_epoch(self) -> bool:
        est = self.est
        self._count_no_improvement()
        self.schedule.epoch_ends(self.opt, est.t_)
        if est._no_improvement_count > est.n_iter_no_change:
            watched = "Validation score" if self.validation is not None else "Training loss"
            msg = (f"{watched} did not improve more than tol={est.tol:f} "
                   f"for {est.n_iter_no_change} consecutive epochs.")
            stop = self.schedule.plateau(self.opt)
            if est.verbose:
                if not stop:
                    msg += " Setting learning rate to %f" % self.opt.lr
                elif isinstance(self.schedule, schedules.Adaptive):
                    msg += " Learning rate too small. Stopping."
                else:
                    msg += " Stopping."
                print(msg)
            if stop:
                return True
            est._no_improvement_count = 0
        if self.incremental:
            return True
        if est.n_iter_ == est.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=2)
        return False

    def _count_no_improvement(self) -> None:
        est = self.est
        if self.validation is None:
            if est.loss_curve_[-1] > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if est.loss_curve_[-1] < est.best_loss_:
                est.best_loss_ = est.loss_curve_[-1]
            return
        score = self._validation_score()
        est.validation_scores_.append(score)
        if est.verbose:
            print("Validation score: %f" % score)
        # NaN compares False both ways: the count resets and the best is kept, as in scikit-learn.
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est._best_coefs, est._best_intercepts = _layout.from_thetas(
                [self.net.backend.to_host(t) for t in self.net.thetas])

    def _validation_score(self) -> float:
        X_val, y_val, weights = self.validation
        outputs = self.net.predict(X_val)
        if not np.isfinite(outputs).all():
            return math.nan
        return float(self.est._score_outputs(outputs, y_val, weights))
