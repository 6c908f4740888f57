"""The command line: arguments, configuration, exit codes.  No analysis happens here.

Exit codes: 0 clean, 1 a finding at or above ``--fail-on``, 2 an input or the configuration
could not be used.  Every problem is one line on stderr; ``--debug`` adds the traceback.

>>> main(["--version"])
deconvlint 0.1.0
0
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from deconvlint.atomic import write_atomically
from deconvlint.config.settings import Settings
from deconvlint.errors import ConfigError, DeconvlintError, one_line
from deconvlint.formatters import FORMATS, Style, format_error_lines, get_formatter
from deconvlint.printable import printable
from deconvlint.report import SEVERITIES, FileResult, Report
from deconvlint.version import __version__

if TYPE_CHECKING:
    from deconvlint.cli.discovery import Exclusion
    from deconvlint.config.load import Options
    from deconvlint.engine import RunOptions
    from deconvlint.frontends.target import ModelSpec

PROG = "deconvlint"


class _Parser(argparse.ArgumentParser):
    built = False  # build_parser sets it once every argument is added

    def _get_formatter(self) -> argparse.HelpFormatter:
        # While arguments are added, argparse builds a formatter for each only to check its
        # metavar; the width it would ask shutil for (importing shutil, bz2 and lzma in every
        # run's start-up) matters only to help and usage text, laid out after build_parser.
        if not self.built:
            return self.formatter_class(prog=self.prog, width=80)
        return super()._get_formatter()

    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the brief promises one line per problem.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Find upsampling layers that paint checkerboard artifacts, and say what "
        "to write instead.",
        epilog="Exit codes: 0 clean, 1 findings at or above --fail-on, 2 an input or the "
        "configuration could not be used.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="model files (ONNX, torch.export .pt2, TorchScript), Python files (read, never "
        "imported), folders to search for *.onnx and *.py, "
        "or package.module:attribute targets naming a torch model (default: the models listed "
        "in the configuration, else .)",
    )
    parser.add_argument(
        "--format",
        "--output-format",  # ruff's spelling
        dest="format",
        choices=FORMATS,
        default="text",
        help="output format",
    )
    parser.add_argument(
        "--select",
        metavar="RULES",
        help="comma-separated rule ids or prefixes to run (replaces the default)",
    )
    parser.add_argument(
        "--extend-select", metavar="RULES", help="rule ids or prefixes to run in addition"
    )
    parser.add_argument("--ignore", metavar="RULES", help="rule ids or prefixes not to run")
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default=None,
        help="lowest severity that fails the run (default: warning)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="configuration file (pyproject.toml or .deconvlint.yaml); "
        "default: the nearest one from the current folder upwards",
    )
    parser.add_argument(
        "--input-shape",
        metavar="N,C,H,W",
        action="append",
        type=_input_shape,
        help="shape of a random example input for torch targets; repeat for several inputs",
    )
    parser.add_argument(
        "--models",
        action="store_true",
        help="check the models listed in the configuration (with no PATH: only those)",
    )
    parser.add_argument(
        "--allow-no-models",
        action="store_true",
        help="with --models: exit 0 quietly when the configuration lists no models (the "
        "pre-commit hook uses it)",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load torch files whose loading runs code from the file: pickled models "
        "(torch.save(model)), TorchScript archives, and .pt2 archives holding pickles or code",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="rewrite what can safely be rewritten in .py files (see --unsafe-fixes)",
    )
    parser.add_argument(
        "--unsafe-fixes",
        action="store_true",
        help="with --fix or --diff, also apply the kernel rewrites, which change checkpoint shapes",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="print the fixes to .py files as a unified diff instead of writing them",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="say how many upsampling calls each .py file had, and how many were skipped",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        help="give up on a torch model whose forward pass (or trace) runs longer than this",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="trained weights for a package.module:attribute target: a state_dict saved with "
        "torch.save (read with weights_only=True) or a safetensors file",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="run the model (onnxruntime, deconvlint[probe]) on smooth inputs and measure the "
        "periodic artifacts in every upsampler's output and every graph output (rule DL009)",
    )
    parser.add_argument(
        "--plot",
        metavar="DIR",
        type=Path,
        help="write a PNG per finding into DIR: the interior coverage or the measured response "
        "over a few periods (matplotlib, deconvlint[plot])",
    )
    parser.add_argument(
        "--explain", metavar="RULE", help="explain a rule (its id or name) and exit"
    )
    parser.add_argument("--list-rules", action="store_true", help="list all rules and exit")
    parser.add_argument(
        "--statistics",
        action="store_true",
        help="show the number of findings per rule instead of the findings",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only findings and errors, no summary"
    )
    _add_file_arguments(parser)
    _add_ci_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text output: auto (a terminal, unless NO_COLOR is set; FORCE_COLOR "
        "forces it), always or never",
    )
    parser.built = True
    return parser


def _add_file_arguments(parser: argparse.ArgumentParser) -> None:
    """Which files a folder stands for, as ruff spells it."""
    parser.add_argument(
        "--exclude",
        metavar="GLOBS",
        help="comma-separated globs of files and folders a folder leaves out, instead of the "
        "default (hidden folders, __pycache__, node_modules, site-packages)",
    )
    parser.add_argument("--extend-exclude", metavar="GLOBS", help="globs to leave out in addition")
    parser.add_argument(
        "--respect-gitignore",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="leave out what git ignores (.gitignore, .git/info/exclude) inside a git work tree "
        "(default: on)",
    )


def _add_ci_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for CI: parallel jobs, output files, report-only runs."""
    parser.add_argument(
        "-j",
        "--jobs",
        metavar="N",
        type=_jobs,
        default=None,
        help="check files in N parallel processes (default: the number of CPUs)",
    )
    parser.add_argument(
        "-o",
        "--output",
        "--output-file",  # ruff's spelling
        dest="output",
        metavar="FILE",
        help="write the chosen --format to FILE; the terminal keeps the text summary",
    )
    parser.add_argument(
        "--report",
        metavar="FILE.html",
        help="also write a self-contained HTML report to FILE.html",
    )
    parser.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when there are findings (inputs that cannot be read still exit 2)",
    )


def _jobs(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of processes, got {text!r}")
    return int(text)


def _input_shape(text: str) -> tuple[int, ...]:
    from deconvlint.frontends.target import parse_input_shape

    try:
        return parse_input_shape(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _print_traceback() -> None:
    """The traceback of the exception being handled, on stderr (``--debug``): traceback and
    what it imports are loaded only then, not in every run's start-up."""
    import traceback

    traceback.print_exc(file=sys.stderr)


def _fail(message: str) -> int:
    print(printable(one_line(message)), file=sys.stderr)
    return 2


def _flag(keyword: str) -> str:
    """How a configuration error names the flag: ``deconvlint: error: --extend-select``."""
    return f"{PROG}: error: --{keyword.replace('_', '-')}"


def resolve_configuration(args: argparse.Namespace) -> tuple[Options, Settings, list[str]]:
    """The configuration file's options, the settings merged from it and the flags, and any
    warnings about the file (:func:`deconvlint.config.resolve.resolve_settings`)."""
    from deconvlint.config.resolve import resolve_settings

    resolved = resolve_settings(
        args.config,
        select=args.select,
        extend_select=args.extend_select,
        ignore=args.ignore,
        fail_on=args.fail_on,
        spell=_flag,
    )
    return resolved.config, resolved.settings, list(resolved.notes)


def _runs_torch(spec: ModelSpec) -> bool:
    """:func:`deconvlint.frontends.load.runs_torch`, imported when a model is checked: a run
    on Python files alone loads no front end."""
    from deconvlint.frontends.load import runs_torch

    return runs_torch(spec)


def check_one(
    target: str | ModelSpec,
    settings: Settings,
    options: RunOptions | None = None,
    debug: bool = False,
) -> FileResult:
    """:func:`deconvlint.engine.check_target`, with any unexpected exception made one line.

    For torch targets, what the model's own code prints goes to stderr (stdout may be JSON)
    and warnings are hidden unless ``debug``.
    """
    from deconvlint.engine import check_target
    from deconvlint.errors import DeconvlintError
    from deconvlint.frontends.load import runs_torch
    from deconvlint.frontends.target import ModelSpec

    spec = target if isinstance(target, ModelSpec) else ModelSpec(target)
    path = spec.target
    quiet = runs_torch(spec)
    try:
        with contextlib.ExitStack() as stack:
            if quiet:
                stack.enter_context(contextlib.redirect_stdout(sys.stderr))
                stack.enter_context(warnings.catch_warnings())
                if not debug:
                    warnings.simplefilter("ignore")
            return check_target(spec, settings, options, raise_errors=debug)
    except DeconvlintError as exc:  # only with --debug: show where the input was refused
        _print_traceback()
        return FileResult(path=path, error=one_line(exc))
    except Exception as exc:  # a bug, or an input the front end did not expect
        if debug:
            _print_traceback()
        cause = one_line(exc, empty="no message")
        hint = "" if debug else "; run with --debug for the traceback"
        return FileResult(path=path, error=f"internal error: {type(exc).__name__}: {cause}{hint}")


def _write(stream, text: str) -> None:
    if text:
        stream.write(text)
        stream.flush()


def _explain(rule: str) -> int:
    from deconvlint.rules.catalogue import load_catalogue

    catalogue = load_catalogue()
    wanted = rule.strip()
    doc = catalogue.get(wanted.upper()) or next(
        (d for d in catalogue.values() if d.name == wanted.lower()), None
    )
    if doc is None:
        known = ", ".join(catalogue) or "none"
        return _fail(f"{PROG}: error: --explain: unknown rule {rule!r} (known rules: {known})")
    _write(sys.stdout, doc.explain())
    return 0


def _configured_models(args: argparse.Namespace, config: Options) -> tuple[ModelSpec, ...]:
    """The configuration's models to check: with ``--models``, or when no PATH is given."""
    if args.models and not config.models and not args.allow_no_models:
        where = f" ({config.source})" if config.source else ""
        raise ConfigError(
            f"{PROG}: error: --models: the configuration{where} lists no models "
            '(add [[tool.deconvlint.models]] with target = "package.module:attribute")'
        )
    if not (args.models or not args.paths):
        return ()
    shapes = tuple(args.input_shape or ())  # the flag wins over the file, as flags always do
    return tuple(replace(m, input_shapes=shapes) if shapes else m for m in config.models)


def _globs(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(g.strip() for g in text.split(",") if g.strip())


def exclusion(args: argparse.Namespace, config: Options) -> Exclusion:
    """What folders leave out: the defaults, then the file's ``exclude`` / ``extend-exclude``
    (relative to its folder), then the flags' (relative to the current folder), as in ruff."""
    from deconvlint.cli.discovery import DEFAULT_EXCLUDE, Exclusion

    patterns = [(p, "") for p in DEFAULT_EXCLUDE]
    for root, exclude, extend in (
        (config.root or os.curdir, config.exclude, config.extend_exclude),
        (os.curdir, _globs(args.exclude), _globs(args.extend_exclude)),
    ):
        if exclude is not None:
            patterns = [(p, root) for p in exclude]
        patterns += [(p, root) for p in extend or ()]
    respect = args.respect_gitignore
    if respect is None:
        respect = config.respect_gitignore is not False
    return Exclusion(tuple(patterns), respect)


def _check_all(
    args: argparse.Namespace, models: tuple[ModelSpec, ...], settings: Settings
) -> list[FileResult]:
    """The results for the command line's paths and targets, then the configured models."""
    from deconvlint.cli.discovery import collect_targets
    from deconvlint.cli.parallel import Progress, check_in_order, default_jobs, wants_progress
    from deconvlint.engine import RunOptions

    shapes = tuple(args.input_shape or ())
    inputs: list[FileResult | ModelSpec] = []
    found = collect_targets(args.paths or ([] if models else ["."]), args.exclusion)
    for target in found:
        if target.error is not None:
            inputs.append(FileResult(path=target.display, error=target.error))
        elif _is_source(target.display):  # here, in order: --fix writes, --diff prints
            inputs.append(_check_source(target.display, settings, args, target.root))
        else:
            from deconvlint.frontends.target import ModelSpec  # a model file or target: not for .py

            inputs.append(
                ModelSpec(
                    target.display,
                    input_shapes=shapes,
                    weights=args.weights,
                    onnx_only=target.in_folder,
                )
            )
    inputs += [replace(spec, weights=args.weights) if args.weights else spec for spec in models]
    options = RunOptions(probe=args.probe, trust_pickle=args.trust_pickle, timeout=args.timeout)
    run = functools.partial(check_one, settings=settings, options=options, debug=args.debug)
    show = not args.quiet and wants_progress(len(inputs))
    if _COLLECTOR_PAUSED:  # source files were checked above without it: models with it
        gc.enable()
    return check_in_order(
        inputs,
        run,
        jobs=args.jobs or default_jobs(),
        in_process=_runs_torch,  # torch targets import user code and torch: run them here
        progress=Progress(len(inputs), enabled=show),
    )


def _checks_onnx_here(args: argparse.Namespace) -> bool:
    """Whether this process will likely check an ONNX file itself (one model file, or ``-j 1``
    with a path that is no ``.py`` file); a wrong guess costs one idle process."""
    paths = [p for p in args.paths if not p.endswith(".py")]
    single = len(args.paths) == 1 and os.path.isfile(args.paths[0])
    return bool(paths) and (single or args.jobs == 1) and not (args.fix or args.diff)


def _is_source(path: str) -> bool:
    return path.endswith(".py") and os.path.isfile(path)


def _check_source(
    path: str, settings: Settings, args: argparse.Namespace, root: str | None = None
) -> FileResult:
    """Source mode for one ``.py`` file, with ``--fix``/``--diff``/``--verbose``; ``--fix``
    writes nothing outside ``root``, the folder given on the command line."""
    from deconvlint.source import check_file

    try:
        outcome = check_file(
            path,
            settings,
            fix=args.fix,
            unsafe_fixes=args.unsafe_fixes,
            diff=args.diff,
            root=root,
        )
    except Exception as exc:  # a bug: one line, as for models
        if args.debug:
            _print_traceback()
        cause = one_line(exc, empty="no message")
        hint = "" if args.debug else "; run with --debug for the traceback"
        return FileResult(path=path, error=f"internal error: {type(exc).__name__}: {cause}{hint}")
    tally = args.source_tally
    tally["fixed"] += outcome.fixed
    tally["unsafe"] += outcome.unsafe_hidden
    tally["changed"] += bool(outcome.diff) or (args.fix and not args.diff and outcome.fixed > 0)
    if outcome.diff:
        _write(sys.stdout, outcome.diff)
    if args.verbose and outcome.result.error is None:
        from deconvlint.formatters.text import plural

        checked = plural(outcome.checked, "upsampling call")
        print(
            f"{printable(path)}: {checked} with literal geometry checked, "
            f"{outcome.skipped} skipped (geometry not literal)",
            file=sys.stderr,
        )
    return outcome.result


def _fix_summary(args: argparse.Namespace) -> str | None:
    tally = args.source_tally
    if not (args.fix or args.diff):
        return None
    from deconvlint.formatters.text import plural

    verb = "Would fix" if args.diff else "Fixed"
    text = f"{verb} {plural(tally['fixed'], 'finding')} in {plural(tally['changed'], 'file')}."
    if tally["unsafe"]:
        more = plural(tally["unsafe"], "more unsafe fix", "more unsafe fixes")
        text += f" {more} (kernel rewrites) with --unsafe-fixes."
    return text


def use_color(choice: str = "auto") -> bool:
    """``--color``: ``always``, ``never``, or ``auto``: off when ``NO_COLOR`` is set (not
    empty), on when ``FORCE_COLOR`` is, else on a terminal (the no-color.org and
    force-color.org conventions, as ruff reads them)."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout.isatty()


def run(args: argparse.Namespace) -> int:
    """Everything after argument parsing; returns the exit code."""
    if args.version:
        print(f"{PROG} {__version__}")
        return 0
    if args.explain is not None:
        return _explain(args.explain)
    formatter = get_formatter(args.format)
    if args.list_rules:
        from deconvlint.rules.catalogue import load_catalogue

        _write(sys.stdout, formatter.format_rules(load_catalogue()))
        return 0

    if _checks_onnx_here(args):
        from deconvlint.frontends.onnx.reader import prestart_inference

        prestart_inference()  # it warms up while the configuration is read
    try:
        config, settings, notes = resolve_configuration(args)
        models = _configured_models(args, config)
        args.exclusion = exclusion(args, config)
    except ConfigError as exc:
        if args.debug:
            _print_traceback()
        return _fail(str(exc))
    if not args.quiet:
        for note in notes:
            print(printable(note), file=sys.stderr)
    if args.models and not models and not args.paths:  # --allow-no-models: nothing to check
        return 0
    args.source_tally = {"fixed": 0, "unsafe": 0, "changed": 0}
    if args.plot is not None:
        from deconvlint.formatters.plot import check_plotting

        try:
            check_plotting(args.plot)
        except DeconvlintError as exc:
            return _fail(f"{PROG}: error: {exc}")
    report = Report(results=_check_all(args, models, settings))
    if args.plot is not None:
        from deconvlint.formatters.plot import write_plots

        for written in write_plots(report, args.plot):
            if not args.quiet:
                print(f"wrote {printable(str(written))}", file=sys.stderr)

    style = Style(color=use_color(args.color) and args.output is None, summary=not args.quiet)
    render = formatter.format_statistics if args.statistics else formatter.format_report
    rendered = render(report, style)
    failed_write = _write_files(args, report, rendered)
    if args.diff:  # --diff: the diff is the output
        pass
    elif args.output is None:
        _write(sys.stdout, rendered)
    elif not args.quiet:  # the file has the chosen format; the terminal keeps the summary
        from deconvlint.formatters.text import format_summary

        print(format_summary(report))
    for line in format_error_lines(report) + failed_write:
        print(line, file=sys.stderr)
    summary = _fix_summary(args)
    if summary and not args.quiet:
        print(summary, file=sys.stderr)
    if failed_write:
        return 2
    if args.diff:
        return 2 if report.errors else int(args.source_tally["changed"] > 0)
    code = report.exit_code(settings.fail_on)
    return 0 if args.exit_zero and code == 1 else code


def _write_files(args: argparse.Namespace, report: Report, rendered: str) -> list[str]:
    """Write ``--output`` and ``--report`` (atomically: :mod:`deconvlint.atomic`); one error line
    per file that could not be written."""
    wanted = []
    if args.output is not None:
        wanted.append(("--output", args.output, lambda: rendered))
    if args.report is not None:
        from deconvlint.formatters import html

        wanted.append(("--report", args.report, lambda: html.format_report(report)))
    failed = []
    for flag, path, content in wanted:
        data = content().encode("utf-8")  # all of it before the file is touched
        # through a symbolic link to a file, as a shell's redirection would (/dev/stdout, a
        # link to a pipe or a terminal, is written as it is)
        target = os.path.realpath(path) if os.path.isfile(path) else path
        try:
            write_atomically(target, data)
        except OSError as exc:
            cause = exc.strerror or str(exc)
            failed.append(
                f"{printable(path)}: error: {flag}: cannot write the file: {printable(one_line(cause))}"
            )
    return failed


_COLLECTOR_PAUSED = False  # console_main turned the cyclic garbage collector off


def console_main(collector: bool | None = None) -> int:
    """The ``deconvlint`` executable and ``python -m deconvlint``: :func:`main`, then the exit.
    ``collector``: whether the cyclic garbage collector was on before the caller paused it
    (:mod:`deconvlint.__main__` does, before this module's imports); default: as it is now.

    A torch forward pass given up by ``--timeout`` leaves a daemon thread inside torch's C++.
    At interpreter exit, CPython ends such a thread from under that code, which aborts the
    process (``terminate called without an active exception``, SIGABRT) about one run in
    eight.  With such a thread left, the process flushes its output and exits at once.
    """
    global _COLLECTOR_PAUSED
    # Start-up (numpy, the rules, the catalogue) allocates much and frees little, and the cyclic
    # collector's full passes over it were ~7% of a one-file run; _check_all turns it on again
    # before any model is checked (torch's traced graphs are full of cycles).
    _COLLECTOR_PAUSED = gc.isenabled() if collector is None else collector
    gc.disable()
    code = main()
    front_end = sys.modules.get("deconvlint.frontends.torch.load")  # no torch run: no such thread
    forward = getattr(front_end, "FORWARD_THREAD", None)
    if forward and _thread_alive(forward):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    return code


def exit_without_teardown(code: int) -> None:
    """End the process with ``code`` as the interpreter's own exit would (the functions
    registered with :mod:`atexit` run, the output is flushed), but without its teardown, which
    frees every module and object one by one: with numpy loaded that was ~18 ms, a sixth of a
    lint-only source run, and this process has nothing left to clean up.  Returns (and leaves
    the exit to the interpreter) while another thread runs, which the interpreter would wait
    for, after a torch run, and when the output cannot be flushed."""
    threading = sys.modules.get("threading")
    if "torch" in sys.modules or (threading is not None and threading.active_count() > 1):
        return
    import atexit

    atexit._run_exitfuncs()  # what the interpreter's exit calls; it clears them
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except Exception:  # e.g. a closed pipe: the interpreter's exit reports it as it always did
        return
    os._exit(code)


def _thread_alive(name: str) -> bool:
    import threading  # only after a torch run: torch has loaded it

    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def main(argv: Sequence[str] | None = None) -> int:
    """The ``deconvlint`` command; returns the exit code."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # never die on a character the terminal lacks
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    if sys.stdout is None:  # `deconvlint ... >&-`: the findings have nowhere to go
        if not args.output:
            return _fail(f"{PROG}: error: standard output is closed; write the report with -o FILE")
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (until exit)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `deconvlint ... | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except DeconvlintError as exc:
        if args.debug:
            _print_traceback()
        return _fail(f"{PROG}: error: {exc}")
    except Exception as exc:
        if args.debug:
            _print_traceback()
        cause = one_line(exc, empty="no message")
        return _fail(
            f"{PROG}: error: internal error: {type(exc).__name__}: {cause}"
            + ("" if args.debug else "; run with --debug for the traceback")
        )
