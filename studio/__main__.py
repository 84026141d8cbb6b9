"""``python -m studio`` and the ``diffusion-studio`` command: no argument opens the app;
subcommands train, sample, schedule, evaluate and gui (studio.cli)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    code = cli_main(argv)
    from .engine import distributed

    distributed.teardown(distributed.from_env())
    return code


if __name__ == "__main__":
    sys.exit(main())
