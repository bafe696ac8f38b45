"""Options that do not apply to the run are refused, not silently ignored.

``--momentum 0.5`` with Adam, or ``--noise`` with a data file, would otherwise do nothing
while the user believes it did something. Only options given on the command line are
judged (defaults, and those a resumed run takes from its checkpoint, never conflict), and
a conflict is refused rather than warned about: the two options contradict each other, and
a run trained on the wrong belief costs more than retyping the command.
"""

from __future__ import annotations

from ..data import GENERATORS
from .errors import CLIError

# option: the optimisers it applies to
BY_OPTIMIZER = {"momentum": ("momentum",), "nesterov": ("momentum",), "beta1": ("adam",), "beta2": ("adam",)}
# option: the learning-rate schedules it applies to
BY_SCHEDULE = {"power_t": ("invscaling",)}
# option: (the data sources it applies to, "file" for a table file; how to say so)
BY_DATA = {
    "samples": (GENERATORS, "generated data"),
    "noise": (GENERATORS, "generated data"),
    "classes": (("spirals", "blobs"), "--data spirals or blobs"),
    "features": (("blobs",), "--data blobs"),
    "teacher_sizes": (("teacher",), "--data teacher"),
    "target": (("file",), "data from a file"),
    "columns": (("file",), "data from a file"),
    "weight_column": (("file",), "data from a file"),
    "delimiter": (("file",), "data from a file"),
    "one_hot": (("file",), "data from a file"),
}


def refuse_inapplicable(given: dict, o) -> None:
    """A CLIError for the first option in ``given`` that the run ``o`` would ignore."""
    for key, optimizers in BY_OPTIMIZER.items():
        if key in given and o.optimizer not in optimizers:
            raise CLIError(f"{_flag(key)}: applies to --optimizer {' or '.join(optimizers)} only, and this run "
                           f"trains with {o.optimizer}; leave it out or choose --optimizer {optimizers[0]}")
    for key, schedules in BY_SCHEDULE.items():
        if key in given and o.lr_schedule not in schedules:
            raise CLIError(f"{_flag(key)}: applies to --lr-schedule {' or '.join(schedules)} only, and this run's "
                           f"is {o.lr_schedule}; leave it out or add --lr-schedule {schedules[0]}")
    source = o.data if o.data in GENERATORS else "file"
    for key, (sources, what) in BY_DATA.items():
        if key in given and source not in sources:
            got = f"a file ({o.data})" if source == "file" else f"the generator {o.data}"
            raise CLIError(f"{_flag(key)}: applies to {what} only, and --data is {got}; leave it out")


def _flag(key: str) -> str:
    return f"--{key.replace('_', '-')}"
