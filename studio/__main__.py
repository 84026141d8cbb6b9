"""``python -m studio`` and the ``diffusion-studio`` command: no argument opens the app;
subcommands train, sample, schedule, evaluate and gui (studio.cli)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    code = cli_main(argv)
    distributed = sys.modules.get("studio.engine.distributed")
    if distributed is not None:  # only a command that trained or sampled imported torch
        distributed.teardown(distributed.from_env())
    return code


if __name__ == "__main__":
    sys.exit(main())
