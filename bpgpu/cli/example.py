"""``bpgpu example``: the seeds' worked example, the page's figures beside the exact ones."""

from __future__ import annotations

from .errors import CLIError


def run(args) -> int:
    try:
        from ..worked_example import report
    except ModuleNotFoundError as err:
        if err.name != "bpgpu.worked_example":
            raise
        raise CLIError("the worked example is not available in this installation "
                       "(bpgpu/worked_example.py is missing)") from None
    print(report())
    return 0
