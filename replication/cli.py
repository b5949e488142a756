"""Command line: `python -m replication COMMAND ...`.

Commands:
  train EXPERIMENT [--set key=value ...] [--fresh] [--run-dir DIR]
  translate (--run RUN_DIR | --model FILE.keras) --input DIR --output DIR --direction AtoB|BtoA
  data synthetic OUT_DIR [--seed N] [--size 64]
  data check PATH
  data download EXPERIMENT

A `KitError` (a mistake the user can fix) ends in one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from replication.errors import KitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m replication", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    from replication.data import commands as data_commands

    data_commands.add_commands(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except KitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
