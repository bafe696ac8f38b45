"""``python -m bpgpu.bench``: the same as ``bpgpu bench``."""

import sys

from .cli import main

sys.exit(main())
