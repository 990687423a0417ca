"""`OneLineParser`: the command lines' argument parser, whose errors are one line.

argparse prints the whole usage before its error; a user wants what is wrong and where the
help is. Subcommands' parsers are of the same class (argparse makes them of the parent's).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["OneLineParser"]


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
