"""``python -m bpgpu``: the same as the ``bpgpu`` command."""

from .cli import main

raise SystemExit(main())
