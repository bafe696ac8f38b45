"""``bpgpu train``'s options: their argparse groups, and how one run's are resolved
(given, then a --resume checkpoint's, then TRAIN_DEFAULTS) and checked."""

from __future__ import annotations

import argparse

from ..activations import HIDDEN, OUTPUTS
from ..backend import DTYPES
from ..data import GENERATORS
from ..losses import LOSSES
from ..optimizers import OPTIMIZERS
from ..training import DEFAULT_LR
from . import rundir
from .argtypes import batch_size, class_weight, fraction, positive, sizes
from .errors import CLIError
from .lr_schedule import NAMES
from .tables import DELIMITER_HELP

TRAIN_DEFAULTS = dict(
    sizes=None, activation="tanh", output="auto", loss="auto", lam=0.0, bias=True, dropout=0.0,
    optimizer="adam", lr=None, lr_schedule="constant", power_t=0.5, momentum=0.9, nesterov=False, beta1=0.9, beta2=0.999,
    batch_size=64, epochs=100, max_time=None, target_loss=None, patience=None,
    validation_split=None, chunk_size=None, shuffle=True, class_weight=None,
    backend="numpy", dtype="float64", seed=0,
    data=None, samples=1000, classes=None, features=None, noise=None, teacher_sizes=None,
    data_seed=None, target=None, columns=None, weight_column=None, delimiter=None, one_hot=False, standardize=False,
    standardize_target=False,
    out=None, checkpoint_every=None, log_every=None, score_every=1, quiet=False, plot=True,
)
ARCHITECTURE = ("sizes", "activation", "output", "loss", "lam", "bias", "dropout", "dtype", "seed")


def add_arguments(p) -> None:
    """``bpgpu train``'s options, in their help groups; every default None (the run's are
    TRAIN_DEFAULTS, applied after a checkpoint's: see :func:`options`)."""
    _network_options(p)
    _optimiser_options(p)
    _device_options(p)
    _data_options(p)
    _output_options(p)
    p.set_defaults(**{k: None for k in TRAIN_DEFAULTS})


def _network_options(p) -> None:
    net, d = p.add_argument_group("network"), TRAIN_DEFAULTS
    net.add_argument("--sizes", type=sizes, metavar="S0,S1,...", help="layer sizes, input first, e.g. 2,64,64,3 (required unless --resume)")
    net.add_argument("--activation", help=f"hidden activation, one of {', '.join(HIDDEN)}, or one per hidden "
                     f"layer comma-separated (default {d['activation']})")
    net.add_argument("--output", choices=OUTPUTS + ("auto",), help="output activation (default auto: "
                     "softmax for classes (spirals, blobs, --one-hot, text labels; sigmoid when sizes[-1] is 1), "
                     "sigmoid for xor, identity for numbers (teacher, numeric file targets))")
    net.add_argument("--loss", choices=LOSSES + ("auto",), help="loss (default auto: cross_entropy when the "
                     "data are classes (xor, spirals, blobs, --one-hot, text labels) and the output is sigmoid "
                     "or softmax; mse otherwise, including numeric file targets whatever the output)")
    net.add_argument("--lam", type=float, help="L2 strength λ >= 0 (default 0)")
    net.add_argument("--no-bias", dest="bias", action="store_const", const=False, help="layers without a bias")
    net.add_argument("--dropout", type=_rates, metavar="P[,P,...]", help="inverted dropout: each hidden unit "
                     "dropped with probability P in [0, 1) at every training step, the rest scaled by 1/(1-P); "
                     "one rate or one per hidden layer (default 0: none; never when predicting or evaluating)")


def _rates(text: str) -> list[float]:
    try:
        rates = [float(p) for p in text.split(",")]
    except ValueError:
        rates = None
    if rates is None or not all(0.0 <= p < 1.0 for p in rates):
        raise argparse.ArgumentTypeError(f"expected rates in [0, 1), comma-separated, got {text!r}")
    return rates


def _optimiser_options(p) -> None:
    opt, d = p.add_argument_group("optimiser"), TRAIN_DEFAULTS
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d['optimizer']})")
    opt.add_argument("--lr", type=positive(float), help="learning rate (default: "
                     + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")")
    opt.add_argument("--lr-schedule", choices=NAMES, help="how the rate changes between epochs, by scikit-learn's "
                     "rules: constant (default); invscaling, lr / (t+1)^power_t after t examples; adaptive, lr / 5 "
                     "whenever the training loss has not improved by 1e-4 for over 10 epochs, stopping once "
                     "lr <= 1e-6")
    opt.add_argument("--power-t", type=positive(float, zero=True), help=f"the exponent of --lr-schedule invscaling (default {d['power_t']})")
    opt.add_argument("--momentum", type=float, help=f"momentum μ for --optimizer momentum (default {d['momentum']})")
    opt.add_argument("--nesterov", action="store_const", const=True, help="Nesterov momentum")
    opt.add_argument("--beta1", type=float, help=f"Adam β1 (default {d['beta1']})")
    opt.add_argument("--beta2", type=float, help=f"Adam β2 (default {d['beta2']})")
    opt.add_argument("--batch-size", type=batch_size, metavar="N|full", help=f"examples per step, or 'full' for batch "
                     f"gradient descent (default {d['batch_size']})")
    opt.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                     help="keep the data's order in every epoch")
    opt.add_argument("--epochs", type=positive(int), help=f"total epochs, counting those before --resume (default {d['epochs']})")
    opt.add_argument("--max-time", type=positive(float), help="stop after this many seconds")
    opt.add_argument("--target-loss", type=float, help="stop once an epoch's loss is at or below this")
    opt.add_argument("--validation-split", type=fraction, help="hold out this fraction of the data for validation")
    opt.add_argument("--patience", type=positive(int), help="stop when the validation loss has not improved "
                     "for this many epochs, keeping the best weights (needs --validation-split)")
    opt.add_argument("--class-weight", type=class_weight, metavar="balanced|CLASS=W,...",
                     help="weigh each example's loss by its class: 'balanced' (m / (k·count), scikit-learn's) "
                          "or weights by class index or name, e.g. 0=1,1=5 (others 1)")
    opt.add_argument("--chunk-size", type=positive(int), help="compute each step this many rows at a time (same result, less memory)")


def _device_options(p) -> None:
    dev, d = p.add_argument_group("device"), TRAIN_DEFAULTS
    dev.add_argument("--backend", choices=("numpy", "cupy", "auto"), help=f"(default {d['backend']})")
    dev.add_argument("--dtype", choices=DTYPES, help=f"(default {d['dtype']})")
    dev.add_argument("--seed", type=int, help="seeds the initial weights and the shuffling (default 0)")
    dev.add_argument("--distributed", action="store_const", const=True, help="data-parallel over MPI: one of the "
                     "ranks mpiexec/srun started (detected without this flag from the launcher's environment); "
                     "each rank reads its block of rows, rank 0 prints and saves; needs pip install \"bpgpu[mpi]\"")


def _data_options(p) -> None:
    data, d = p.add_argument_group("data"), TRAIN_DEFAULTS
    data.add_argument("--data", metavar="SOURCE", help=f"a generator ({'|'.join(GENERATORS)}), made on the "
                      "chosen device, or a file (.csv, .tsv, .parquet, .npy, .npz)")
    data.add_argument("--samples", type=positive(int), help=f"examples to generate (default {d['samples']})")
    data.add_argument("--classes", type=positive(int), help="classes for spirals/blobs (default: sizes[-1])")
    data.add_argument("--features", type=positive(int), help="input features for blobs (default: sizes[0])")
    data.add_argument("--noise", type=float, help="noise of the generator (default: the generator's own)")
    data.add_argument("--teacher-sizes", type=sizes, metavar="S0,...", help="the teacher network's sizes (default: --sizes)")
    data.add_argument("--data-seed", type=int, help="seed of the generator and the validation split (default: --seed)")
    data.add_argument("--target", metavar="COLS", help="the target columns of a file: header names or "
                      "indices (negative from the end), comma-separated, e.g. 'label' or -1 or 3,4")
    data.add_argument("--columns", metavar="COLS", help="the input columns of a file (default: all but the "
                      "targets): names, indices, ranges first:last like f0:f63, and '!COL' to leave one out")
    data.add_argument("--weight-column", metavar="COL", help="a column of the file holding each example's weight "
                      "sᵢ ≥ 0 (scikit-learn's sample_weight): never an input; the validation split keeps its rows' "
                      "weights out of the validation loss")
    data.add_argument("--delimiter", metavar="CHAR", help=DELIMITER_HELP)
    data.add_argument("--one-hot", action="store_const", const=True, help="the one target column holds "
                      "class labels 0..sizes[-1]-1: train on their one-hot rows (a column of text labels "
                      "needs no flag: its names become the classes)")
    data.add_argument("--standardize", action="store_const", const=True, help="scale each input to mean 0 and "
                      "standard deviation 1, with mean and deviation from the training split only; kept in the "
                      "model, so predict and evaluate scale their inputs alike")
    data.add_argument("--standardize-target", action="store_const", const=True, help="train on numeric targets "
                      "scaled to mean 0 and deviation 1 (from the training split), each column; kept in the model, "
                      "so predict and export give numbers in the targets' units (loss and lr are then in scaled units)")


def _output_options(p) -> None:
    out, d = p.add_argument_group("output"), TRAIN_DEFAULTS
    out.add_argument("--out", metavar="DIR", help="save model.npz, history.json and loss.png here (and "
                     "regions.png for two-feature classes)")
    out.add_argument("--checkpoint-every", type=positive(int), metavar="N",
                     help="also save DIR/checkpoint.npz every N epochs (resume with --resume)")
    out.add_argument("--resume", metavar="PATH", help="continue from a checkpoint or model.npz, "
                     "optimiser state included")
    out.add_argument("--log-every", type=positive(int, zero=True), metavar="N", help="print the loss every N epochs "
                     "(default: about 10 lines; 0 = never)")
    out.add_argument("--score-every", type=positive(int), metavar="N", help="score the metric (accuracy or R²) "
                     "every N epochs, each time on at most 10,000 rows of the training and validation data "
                     "(default 1; the summary at the end scores every row)")
    out.add_argument("--quiet", action="store_const", const=True, help="no progress bar or loss lines")
    out.add_argument("--no-plot", dest="plot", action="store_const", const=False, help="skip loss.png and regions.png")


def options(given: dict, checkpoint, resume) -> argparse.Namespace:
    """The options of this run: those given, then (on --resume) the checkpoint's with its folder
    as --out, then defaults."""
    stored = {}
    if checkpoint is not None:
        stored = dict((checkpoint.extra or {}).get("cli", {}))
        rundir.check_data(stored, given, resume)
        config = {"dropout": list(checkpoint.network.dropout), **checkpoint.network.config()}
        for key in ARCHITECTURE:
            if key in given and given[key] != "auto" and _normal(key, given[key], config) != config[key]:
                shown = ",".join(map(str, config[key])) if key == "sizes" else config[key]
                option = "--no-bias" if key == "bias" else f"--{key}"
                raise CLIError(f"{option}: the checkpoint's network has {key} {shown}; "
                               "a resumed run cannot change its architecture")
        stored.update(config, **_saved_optimizer(checkpoint), **rundir.resumed_folder(resume))
        for shown_only in ("log_every", "score_every", "quiet", "plot"):  # how this run looks is this run's choice
            stored.pop(shown_only, None)
    options = {**TRAIN_DEFAULTS, **stored, **given}
    if options["data_seed"] is None:
        options["data_seed"] = options["seed"]
    return argparse.Namespace(**options)


def _saved_optimizer(checkpoint) -> dict:
    """The options the checkpoint's optimiser stands for (its name, lr, momentum, …): a
    resumed run continues it, whether the checkpoint has the CLI's record or not."""
    saved = checkpoint.optimizer
    if saved is None:
        return {}
    return {k: v for k, v in {"optimizer": saved.name, **saved.hyperparameters()}.items() if k in TRAIN_DEFAULTS}


def _normal(key, value, config):
    if key == "activation":
        names = value.split(",")
        return names * (len(config["sizes"]) - 2) if len(names) == 1 else names
    if key == "dropout":
        return value * (len(config["sizes"]) - 2) if len(value) == 1 else value
    return float(value) if key == "lam" else value


def check(o, checkpoint):
    if o.sizes is None:
        raise CLIError("--sizes: give the layer sizes, input first, e.g. --sizes 2,64,3")
    if o.data is None:
        raise CLIError(f"--data: give a generator ({', '.join(GENERATORS)}) or a .csv/.tsv/.parquet/.npy/.npz file")
    if o.patience and not o.validation_split:
        raise CLIError("--patience: early stopping watches a validation loss; add --validation-split, e.g. 0.2")
    if o.checkpoint_every and not o.out:
        raise CLIError("--checkpoint-every: checkpoints go into --out DIR; give one")
    if checkpoint is None and o.activation is not None and o.sizes is not None:
        names = o.activation.split(",")
        if len(names) not in (1, len(o.sizes) - 2):
            raise CLIError(f"--activation {o.activation}: expected one name or {len(o.sizes) - 2} "
                           f"(one per hidden layer of --sizes {','.join(map(str, o.sizes))})")
        o.activation = names[0] if len(names) == 1 else names
    if checkpoint is None and isinstance(o.dropout, list) and o.sizes is not None:
        if len(o.dropout) not in (1, len(o.sizes) - 2):
            raise CLIError(f"--dropout {','.join(map(str, o.dropout))}: expected one rate or {len(o.sizes) - 2} "
                           f"(one per hidden layer of --sizes {','.join(map(str, o.sizes))})")
        o.dropout = o.dropout[0] if len(o.dropout) == 1 else o.dropout
