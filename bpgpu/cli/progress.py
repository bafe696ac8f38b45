"""What ``bpgpu train`` shows while it runs: a progress bar and a loss line every few epochs.

The bar redraws one line of stderr in place, which only a terminal shows as one line: where
stderr is a pipe or a file (``mpiexec``, ``2> log``, ``| tee``) its redraws would pile up
between the loss lines, so there the loss lines alone are written.
"""

from __future__ import annotations

import sys
import time


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an open terminal (a closed or detached stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """A tqdm bar over all epochs (epoch, loss, metric, samples/s) on a terminal's stderr, and a
    loss line on stdout every few epochs."""

    def __init__(self, o, start):
        self.total, self.t0 = o.epochs, time.perf_counter()
        every = o.log_every
        self.every = max(1, (o.epochs - start) // 10) if every is None else every
        self.quiet = bool(o.quiet)
        self.bar = None
        if not self.quiet and is_terminal(sys.stderr):
            from tqdm import tqdm

            self.bar = tqdm(total=o.epochs, initial=start, unit="epoch", dynamic_ncols=True, file=sys.stderr)

    def epoch(self, epoch, history, scores: dict[str, float]):
        """Show epoch ``epoch`` (0-based) of ``history`` with its ``scores`` {"accuracy": 0.97, …}."""
        loss = history.loss[-1]
        rate = history.samples / max(time.perf_counter() - self.t0, 1e-9)
        if self.bar is not None:
            shown = {name.replace("validation ", "val_").replace("accuracy", "acc"): f"{value:.4g}"
                     for name, value in scores.items()}
            self.bar.set_postfix(loss=f"{loss:.4g}", **shown, samples_s=f"{rate:,.0f}", refresh=False)
            self.bar.update(1)
        if not self.quiet and self.every and (epoch + 1) % self.every == 0:
            line = f"epoch {epoch + 1:>{len(str(self.total))}}/{self.total}  loss {loss:.6g}"
            if history.val_loss:
                line += f"  validation {history.val_loss[-1]:.6g}"
            line += "".join(f"  {name} {value:.4g}" for name, value in scores.items())
            if self.bar is not None:  # clears the bar, writes the line, draws the bar again below it
                self.bar.write(line, file=sys.stdout)
            else:
                print(line)
            sys.stdout.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
