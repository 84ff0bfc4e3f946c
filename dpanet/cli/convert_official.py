"""dpanet convert-official: the authors' final.pth to our checkpoint format."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-official",
        help="convert the authors' released checkpoint to ours",
        description="Convert the release's checkpoint ({'G_state_dict': {'module.<key>': ...}}) or a plain "
        "state dict of it to this project's format (configuration and BGR channel order recorded). "
        "An existing destination is replaced (keeping its permissions; a symlink keeps pointing at the "
        "replaced file); the source itself is never overwritten.",
    )
    p.add_argument("source", type=Path, help="the release's final.pth")
    p.add_argument("destination", type=Path, help="our checkpoint to write")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.training.checkpoint import convert_official

    loaded = convert_official(args.source, args.destination)
    print(
        f"wrote {args.destination}: released DPANet, {sum(p.numel() for p in loaded.model.parameters()):,} "
        f"parameters, channel order {loaded.channel_order}"
    )
    return 0
