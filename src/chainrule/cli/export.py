"""``chainrule export MODEL --to safetensors|onnx|torch -o FILE``: a model for other tools."""

from __future__ import annotations

import argparse
import os
import sys

from chainrule.cli import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a model file as safetensors, ONNX or a PyTorch program",
        description="Export a model file (from `chainrule train --out`, .npz or .safetensors). "
        "safetensors: the weights under PyTorch's state-dict names plus the "
        "architecture and preprocessing (chainrule reads it back; needs the "
        "safetensors package). onnx: an ONNX graph from raw feature rows, input "
        "standardisation included, that ONNX Runtime runs (needs onnx). torch: a "
        "torch.export program, loadable with torch.export.load (needs PyTorch).",
    )
    p.add_argument("model", metavar="MODEL", help="a model file (.npz or .safetensors)")
    p.add_argument(
        "--to", required=True, choices=("safetensors", "onnx", "torch"), help="the format to write"
    )
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the file to write (atomically)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.interop.export import export, missing_package

    if not os.path.exists(args.model):
        raise CommandError(f"model file {args.model}: no such file")
    if os.path.isdir(args.out):
        raise CommandError(f"--out {args.out}: is a directory, expected a file path")
    directory = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(directory):
        raise CommandError(f"--out {args.out}: directory {directory} does not exist")
    if os.path.exists(args.out) and os.path.samefile(args.model, args.out):
        raise CommandError(f"--out {args.out} is the model file itself; write the export elsewhere")
    why = missing_package(args.to)
    if why:
        raise CommandError(why)
    print(export(args.model, args.to, args.out), file=sys.stderr)
    return 0
