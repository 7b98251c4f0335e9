#!/usr/bin/python3
"""Reference central (cloud) training of a vibgate anomaly autoencoder, exported as ONNX.

Reads the model-input vectors that `vibgate features --model-input --format csv` writes (columns
file,channel,start_s, then the autoencoder's inputs named as in a vibgate model: lg_rms, lg_peak,
..., see docs/features.md "Model input vector"), standardizes them as the gateway does (mean and
population std of the training split, std floored at 0.02), trains a D -> 32 -> 8 -> 32 -> D
autoencoder (hidden widths and activation configurable, linear output) with Adam on the mean
squared reconstruction error, optionally prunes it by magnitude (torch.nn.utils.prune) with
fine-tuning, and writes an ONNX model (opset 13, float32) in the subset `vibgate model import`
reads (docs/model.md "Training centrally"):

    X -> Sub(mean) -> Div(std) -> Gemm(transB=1) -> act -> ... -> Gemm(transB=1) -> Y

X is the raw model-input vector [N, D], Y the reconstruction of the standardized input [N, D];
metadata_props vibgate.input_names (comma-separated column names), vibgate.mean and vibgate.std
(comma-separated, %.9g) carry the contract, plus a few informative vibgate.* entries.

Usage (Debian 12: python3-torch, python3-numpy, python3-onnx):
    vibgate features healthy.wav --model-input --format csv --overlap 0.75 [feature options] > f.csv
    deploy/tools/train_autoencoder.py f.csv --out model.onnx [--epochs 300] [--hidden 32,8,32]
        [--activation relu|tanh|sigmoid] [--prune 0.5] [--seed 1]
    vibgate model import model.onnx --out model.vgm --calibration healthy.wav [feature options]

Exit codes: 0 written; 1 bad input (one line naming the file and the problem); 2 usage error or
python3-torch / python3-onnx missing (one line saying which package to install).
"""
import argparse
import csv
import math
import sys

PROG = "train_autoencoder.py"
META_COLUMNS = ("file", "channel", "start_s")


class InputError(Exception):
    """Bad input data: the message names the file and the problem."""


def fail(message, code=1):
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(code)


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("csv", nargs="+", help="CSV files from `vibgate features --model-input --format csv`")
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--hidden", default="32,8,32", help="hidden layer widths (default 32,8,32)")
    p.add_argument("--activation", choices=("relu", "tanh", "sigmoid"), default="relu",
                   help="activation of the hidden layers (default relu; the output is linear)")
    p.add_argument("--epochs", type=int, default=300,
                   help="maximum epochs (default 300; like the gateway, at most 5 million window passes)")
    p.add_argument("--patience", type=int, default=30, help="early-stopping patience in epochs (default 30)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="L2 on weights (default 1e-4)")
    p.add_argument("--validation-fraction", type=float, default=0.2)
    p.add_argument("--min-std", type=float, default=0.02, help="floor of the per-feature std (default 0.02)")
    p.add_argument("--prune", type=float, default=0.0,
                   help="magnitude pruning: this fraction of every layer's weights set to 0, then fine-tuned")
    p.add_argument("--prune-finetune-epochs", type=int, default=0,
                   help="fine-tuning epochs over all pruning steps (default: the epoch limit again)")
    p.add_argument("--prune-steps", type=int, default=3, help="pruning steps up to --prune (default 3)")
    p.add_argument("--seed", type=int, default=1, help="random seed (the result is deterministic for a seed)")
    p.add_argument("--torch-output", metavar="FILE.npy",
                   help="also write torch's output Y for every CSV row (float32 [N, D]), for checks")
    a = p.parse_args(argv)
    try:
        a.hidden = [int(h) for h in a.hidden.split(",")]
    except ValueError:
        p.error(f"--hidden {a.hidden!r}: expected comma-separated widths such as 32,8,32")
    if not a.hidden or min(a.hidden) < 1:
        p.error("--hidden: every width must be at least 1")
    if not 0.0 <= a.prune < 1.0:
        p.error(f"--prune {a.prune}: must be at least 0 and below 1")
    if a.epochs < 1 or a.patience < 1 or a.batch_size < 1 or a.prune_steps < 1 or a.prune_finetune_epochs < 0:
        p.error("--epochs, --patience, --batch-size and --prune-steps must be positive")
    if not 0.0 < a.validation_fraction < 1.0:
        p.error("--validation-fraction must be between 0 and 1")
    return a


def read_rows(paths):
    """(input names, rows as a list of float lists) from the CSV files; InputError on bad input."""
    names, rows = None, []
    for path in paths:
        try:
            f = open(path, newline="")
        except OSError as e:
            raise InputError(f"{path}: cannot open: {e.strerror}")
        with f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file")
            if tuple(header[:3]) != META_COLUMNS or len(header) < 4:
                raise InputError(f"{path}: not a `vibgate features --format csv` file (header starts "
                                 f"{','.join(header[:3])!r}, expected 'file,channel,start_s')")
            cols = header[3:]
            if "lg_rms" not in cols:
                raise InputError(f"{path}: holds the raw features, not the model-input vector; write it with "
                                 "`vibgate features --model-input --format csv`")
            if names is None:
                names = cols
            elif cols != names:
                raise InputError(f"{path}: columns differ from {paths[0]} (another feature configuration)")
            for line, r in enumerate(reader, start=2):
                if len(r) != len(header):
                    raise InputError(f"{path}:{line}: {len(r)} fields, the header has {len(header)}")
                try:
                    vals = [float(v) for v in r[3:]]
                except ValueError:
                    raise InputError(f"{path}:{line}: a model input is not a number")
                bad = [names[i] for i, v in enumerate(vals) if not math.isfinite(v)]
                if bad:
                    raise InputError(f"{path}:{line}: {bad[0]} is not finite")
                rows.append(vals)
    if len(rows) < 8:
        raise InputError(f"{paths[0]}: only {len(rows)} windows; at least 8 are needed")
    return names, rows


def main(argv):
    args = parse_args(argv)
    try:
        import numpy as np
    except ImportError:
        fail("python3-numpy is not installed (apt-get install python3-numpy)", 2)
    try:
        import torch
        from torch.nn.utils import prune
    except ImportError:
        fail("python3-torch is not installed (apt-get install python3-torch); cannot train", 2)
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        fail("python3-onnx is not installed (apt-get install python3-onnx); cannot export", 2)

    try:
        names, rows = read_rows(args.csv)
    except InputError as e:
        fail(str(e))
    x = np.asarray(rows, dtype=np.float32)
    n, d = x.shape

    # Deterministic for a seed: one thread, seeded generators, deterministic kernels.
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)

    # Split (validation first, as the gateway does) and standardization from the training part.
    perm = rng.permutation(n)
    nval = min(max(int(math.floor(args.validation_fraction * n)), 1), n // 2)
    val_idx, train_idx = perm[:nval], perm[nval:]
    mean = x[train_idx].astype(np.float64).mean(axis=0)
    std = np.maximum(x[train_idx].astype(np.float64).std(axis=0), args.min_std)
    mean32, std32 = mean.astype(np.float32), std.astype(np.float32)
    z = torch.from_numpy((x - mean32) / std32)
    z_train, z_val = z[train_idx], z[val_idx]

    widths = [d] + args.hidden + [d]
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[args.activation]

    class Autoencoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
            with torch.no_grad():  # He-uniform as the gateway (half the range on the linear output)
                for i, layer in enumerate(self.layers):
                    limit = math.sqrt(6.0 / layer.in_features) * (0.5 if i == len(self.layers) - 1 else 1.0)
                    layer.weight.uniform_(-limit, limit)
                    layer.bias.zero_()

        def forward(self, v):
            for layer in self.layers[:-1]:
                v = act(layer(v))
            return self.layers[-1](v)

    net = Autoencoder()
    weights = [layer.weight for layer in net.layers]
    biases = [layer.bias for layer in net.layers]
    opt = torch.optim.Adam([{"params": weights, "weight_decay": args.weight_decay},
                            {"params": biases, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(args.seed)

    def loss_of(zs):
        with torch.no_grad():
            return float(torch.mean((net(zs) - zs) ** 2))

    stats = {"epochs": 0, "best_epoch": 0}

    def run_epochs(limit, entry_val):
        """Up to `limit` epochs with early stopping; restores the best state; returns its loss."""
        best_val, ref_val, since = entry_val, entry_val, 0
        best = {k: v.clone() for k, v in net.state_dict().items()}
        for _ in range(limit):
            order = torch.randperm(len(train_idx), generator=gen)
            for b0 in range(0, len(order), args.batch_size):
                batch = z_train[order[b0:b0 + args.batch_size]]
                opt.zero_grad()
                loss = torch.mean((net(batch) - batch) ** 2)
                loss.backward()
                opt.step()
            val = loss_of(z_val)
            stats["epochs"] += 1
            if val < best_val:
                best_val = val
                best = {k: v.clone() for k, v in net.state_dict().items()}
                stats["best_epoch"] = stats["epochs"]
            if val < ref_val * (1 - 1e-3):
                ref_val, since = val, 0
            else:
                since += 1
                if since >= args.patience:
                    break
        net.load_state_dict(best)
        return best_val

    epoch_limit = min(args.epochs, max(1, math.ceil(5_000_000 / len(train_idx))))
    val_loss = run_epochs(epoch_limit, math.inf)
    dense_val_loss = val_loss
    if args.prune > 0:
        # Gradual magnitude pruning: step s zeroes round(prune·s/steps · in·out) weights per layer
        # (the smallest |w| among those still unpruned), then fine-tunes with the mask applied;
        # masked weights get no gradient, so they stay 0.
        total = args.prune_finetune_epochs or epoch_limit
        total = max(total, args.prune_steps)
        pruned = [0] * len(net.layers)
        for s in range(1, args.prune_steps + 1):
            for i, layer in enumerate(net.layers):
                target = round(args.prune * s / args.prune_steps * layer.weight.numel())
                prune.l1_unstructured(layer, "weight", amount=int(target - pruned[i]))
                pruned[i] = target
            stats["best_epoch"] = stats["epochs"]
            epochs = total // args.prune_steps + (1 if s <= total % args.prune_steps else 0)
            val_loss = run_epochs(epochs, loss_of(z_val))
        for layer in net.layers:
            prune.remove(layer, "weight")
    net.eval()
    train_loss = loss_of(z_train)

    if args.torch_output:
        with torch.no_grad():
            np.save(args.torch_output, net(z).numpy().astype(np.float32))

    # ONNX: X -> Sub(mean) -> Div(std) -> Gemm (+ activation) ... -> Y.
    op = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}[args.activation]
    inits = [numpy_helper.from_array(mean32, "mean"), numpy_helper.from_array(std32, "std")]
    nodes = [helper.make_node("Sub", ["X", "mean"], ["centered"], name="standardize_sub"),
             helper.make_node("Div", ["centered", "std"], ["z"], name="standardize_div")]
    prev = "z"
    for i, layer in enumerate(net.layers):
        w = layer.weight.detach().numpy().astype(np.float32)
        b = layer.bias.detach().numpy().astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        last = i == len(net.layers) - 1
        out = "Y" if last else f"gemm{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [out], name=f"dense{i}",
                                      alpha=1.0, beta=1.0, transB=1))
        if not last:
            nodes.append(helper.make_node(op, [out], [f"act{i}"], name=f"{args.activation}{i}"))
            out = f"act{i}"
        prev = out
    graph = helper.make_graph(nodes, "vibgate_autoencoder",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", d])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", d])], inits)
    model = helper.make_model(graph, producer_name="vibgate train_autoencoder.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    nonzero = int(sum(int(torch.count_nonzero(layer.weight)) for layer in net.layers))
    total_w = int(sum(layer.weight.numel() for layer in net.layers))
    meta = {
        "vibgate.input_names": ",".join(names),
        "vibgate.mean": ",".join(f"{v:.9g}" for v in mean32),
        "vibgate.std": ",".join(f"{v:.9g}" for v in std32),
        "vibgate.activation": args.activation,
        "vibgate.hidden": ",".join(str(h) for h in args.hidden),
        "vibgate.seed": str(args.seed),
        "vibgate.windows": str(n),
        "vibgate.epochs": str(stats["epochs"]),
        "vibgate.validation_loss": f"{val_loss:.9g}",
        "vibgate.prune_fraction": f"{args.prune:g}",
        "vibgate.nonzero_weights": str(nonzero),
    }
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    try:
        onnx.save(model, args.out)
    except OSError as e:
        fail(f"{args.out}: cannot write: {e.strerror}")
    pruned_text = (f", pruned {args.prune * 100:g} % per layer (dense validation loss {dense_val_loss:.6g})"
                   if args.prune > 0 else "")
    print(f"{PROG}: wrote {args.out}: {d} inputs, hidden {args.hidden} {args.activation}, {n} windows "
          f"({len(train_idx)} training, {nval} validation), {stats['epochs']} epochs (best {stats['best_epoch']}), "
          f"train loss {train_loss:.6g}, validation loss {val_loss:.6g}{pruned_text}, "
          f"{nonzero} of {total_w} weights nonzero", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
