"""bpgpu: fully-connected networks trained by backpropagation on NumPy or CuPy.

    import bpgpu
    net = bpgpu.Network([3, 2, 1], activation="identity", output="sigmoid", bias=False)
    history = net.fit(X, Y, epochs=100, lr=0.5)
    bpgpu.save(net, "model.npz"); net = bpgpu.load("model.npz")
"""

import sys

from . import activations, data, losses, metrics, schedules
from .backend import BackendUnavailable, available_backends, get_backend
from .gradcheck import gradient_check
from .network import Network
from .optimizers import SGD, Adam, Momentum, Optimizer
from .io import load, load_checkpoint, persistence, save
from .scaling import Standardizer
from .threads import set_threads
from .training import DivergenceError, DivergenceWarning, History, fit

__version__ = "0.1.0"

# bpgpu.persistence, the name README has given load_checkpoint, stays importable.
sys.modules[__name__ + ".persistence"] = persistence

__all__ = ["Network", "fit", "History", "gradient_check", "save", "load", "load_checkpoint", "Standardizer", "data", "metrics", "schedules", "set_threads", "get_backend", "available_backends",
           "BackendUnavailable", "DivergenceError", "DivergenceWarning", "Optimizer", "SGD", "Momentum", "Adam",
           "__version__"]
