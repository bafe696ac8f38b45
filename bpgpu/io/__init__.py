"""Files: atomic writes (``atomic``), the hostile-file-proof ``.npz`` reader (``npz``), the
model file's layout and checks (``model_file``), and saving/loading networks (``persistence``)."""

from .persistence import Checkpoint, load, load_checkpoint, save

__all__ = ["Checkpoint", "load", "load_checkpoint", "save"]
