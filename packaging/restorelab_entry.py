"""Entry point of the frozen (PyInstaller) program: the ``restorelab`` command.

``restorelab --self-test`` is accepted as a short form of ``restorelab gui --self-test``.
"""

from __future__ import annotations

import multiprocessing
import sys


def _main() -> int:
    from restorelab import cli

    # the hardening commands (bench fuzz/soak/faults, selftest), also where the
    # dispatcher of this version does not list them yet
    if "restorelab.cli.ship_cmd" not in cli._GROUPS:  # noqa: SLF001
        cli._GROUPS = (*cli._GROUPS, "restorelab.cli.ship_cmd")  # noqa: SLF001
    argv = sys.argv[1:]
    if argv and argv[0] == "--self-test":
        argv = ["gui", "--self-test", *argv[1:]]
    return cli.main(argv)


if __name__ == "__main__":
    multiprocessing.freeze_support()  # the fuzz benchmark spawns worker processes
    sys.exit(_main())
