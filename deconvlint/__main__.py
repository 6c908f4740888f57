"""``python -m deconvlint`` and the ``deconvlint`` executable: the same command."""

import gc
import sys


def main() -> int:
    """:func:`deconvlint.cli.main.console_main`, with the cyclic collector paused before the CLI's
    own imports too (their collections were ~5% of a lint-only source run; see there).

    When deconvlint is the program (not run by another program's code in its own process, as
    :func:`runpy.run_module` does, whose code after it must still run), the process ends without
    the interpreter's teardown: :func:`deconvlint.cli.main.exit_without_teardown`.
    """
    collector = gc.isenabled()
    gc.disable()
    from deconvlint.cli.main import console_main, exit_without_teardown

    code = console_main(collector=collector)
    if getattr(sys.modules.get("__main__"), "main", None) is main:
        exit_without_teardown(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
