"""Runs many ``diffusion-studio`` command lines in one process (one interpreter start
instead of one per case, on 2 shared cores): ``python -m tests.cli_driver CASES.json
RESULTS.json``. Each case is ``{"id", "argv", "cwd"}``; each result holds the exit code
``studio.cli.main`` returned, what it printed, and any exception that escaped it (a
traceback the user would have seen)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback


def run_case(argv: list[str], cwd: str | None) -> dict:
    from studio import cli

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    escaped = None
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except BaseException:  # noqa: BLE001 - whatever escapes the CLI is the finding
        code, escaped = None, traceback.format_exc()
    finally:
        os.chdir(here)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "escaped": escaped}


def main() -> None:
    cases = json.loads(open(sys.argv[1]).read())
    results = {case["id"]: run_case(case["argv"], case.get("cwd")) for case in cases}
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
