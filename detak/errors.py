"""How a failure reaches the user of the ``detak`` command: one line, and an exit status.

The exit status rule, the same for every sub-command (README, ``detak --help``):

====  =====================================================================================
0     every source was analysed
1     a source was rejected (quality) or failed (unreadable, wrong content); each is named
      on stderr, and commands that take several sources go on with the others
2     usage error: an unknown option or value, or a model, rule set, key or bundle named on
      the command line that cannot be found or used
====  =====================================================================================

Named errors are the exception classes detak defines (``RecordingError``, the
number-format errors, ``InputError``, ``MetricsError``, ``SourceError``, ...: recognised by
their module, so none of them had to be renamed), ``OSError`` (a missing file) and
``ValueError`` (a bad value). `main` in `detak.cli` prints them as
``detak COMMAND: error: MESSAGE``; anything else is reported the same way but marked
``unexpected`` (a defect), and ``--debug`` shows the traceback instead. New named errors may
subclass `DetakError`; `UsageError` exits 2.

>>> from detak.data.sources import SourceError
>>> error_line("intervals", SourceError("unknown source 'x://1'"))
"detak intervals: error: unknown source 'x://1'"
>>> error_line("plot", FileNotFoundError("no such record file: a.hea"), source="a.hea")
'detak plot: error: no such record file: a.hea'
>>> error_line("plot", ValueError("too short"), source="b.csv")
'detak plot: error: b.csv: too short'
>>> exit_code(UsageError("give URL")), exit_code(SourceError("x"))
(2, 1)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# detak's own classes that mean "the command line names something unusable" (exit 2). By name,
# so a class may move between modules (e.g. `detak.models.predict` -> `detak.export.predict`).
USAGE_ERROR_NAMES = frozenset({
    "UsageError", "ModelNotFoundError", "RuntimeNotAvailableError", "UnknownModelError",
    "RuleSetError", "BundleError", "BackendUnavailableError", "HostExtraMissingError",
})

EXIT_RULE = ("Exit status (every command): 0 = every source analysed; 1 = a source was "
             "rejected or failed: each is named in one line on stderr (detak COMMAND: "
             "error|rejected: SOURCE: problem) and the other sources are still analysed; "
             "2 = usage error (an unknown option or value; a model, rule set, key or bundle "
             "that cannot be found or used; a command that needs the host extra). --debug "
             "shows the traceback of an error instead of its one line.")
EXIT_RULE_SHORT = ("Exit status: 0 = every source analysed, 1 = a source rejected or failed "
                   "(named on stderr), 2 = usage error.")


class DetakError(Exception):
    """Base class for new named errors of detak (a one-line message for the user)."""


class UsageError(DetakError):
    """The command line is wrong (missing or conflicting arguments): exit status 2."""


def _is_detak_class(cls: type) -> bool:
    return cls.__module__ == "detak" or cls.__module__.startswith("detak.")


# other libraries' errors that report the user's situation, not a defect (Bluetooth missing)
NAMED_EXTERNAL_NAMES = frozenset({"BleakError", "BleakDBusError", "SerialException"})


def is_named(err: BaseException) -> bool:
    """Is ``err`` a named error (bad input, missing file, missing package), not a defect?

    >>> from detak.models.cnn_metrics import MetricsError
    >>> is_named(MetricsError("no records")), is_named(OSError("x")), is_named(TypeError("x"))
    (True, True, False)
    """
    return (any(_is_detak_class(c) or c.__name__ in NAMED_EXTERNAL_NAMES
                for c in type(err).__mro__)
            or isinstance(err, OSError | ValueError | ModuleNotFoundError))


def exit_code(err: BaseException) -> int:
    """2 for a usage error, else 1 (see the module doc)."""
    if any(c.__name__ in USAGE_ERROR_NAMES and _is_detak_class(c) for c in type(err).__mro__):
        return EXIT_USAGE
    return EXIT_FAILED


def message(err: BaseException) -> str:
    """The error's text on one line (a KeyError's quotes dropped, a missing package named).

    >>> message(KeyError("lead V2 missing"))
    'lead V2 missing'
    >>> message(ModuleNotFoundError(name="torch"))  # doctest: +ELLIPSIS
    "needs the Python package 'torch', which is not installed (...pip install 'detak[host]')"
    """
    if isinstance(err, ModuleNotFoundError) and err.name and not _is_detak_class(type(err)):
        return (f"needs the Python package {err.name.split('.')[0]!r}, which is not installed "
                "(it comes with detak[host]: pip install 'detak[host]')")
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]
    else:
        text = str(err)
    text = " ".join(text.split()) or type(err).__name__
    return text


def error_line(command: str, err: BaseException | str, source: str | None = None) -> str:
    """``detak COMMAND: error: [SOURCE: ]MESSAGE``; SOURCE only when the message lacks it.
    ``err`` is an exception or the message already written for one."""
    text = " ".join(err.split()) if isinstance(err, str) else message(err)
    if source and source not in text:
        text = f"{source}: {text}"
    if not isinstance(err, str) and not is_named(err):
        text = (f"unexpected {type(err).__name__}: {text} (a defect of detak: run again with "
                "`detak --debug ...` for the traceback and report it)")
    return f"detak {command}: error: {text}"


def report(command: str, err: BaseException, source: str | None = None,
           file: TextIO | None = None) -> int:
    """Print `error_line` to stderr and return the exit status for ``err``."""
    print(error_line(command, err, source), file=file or sys.stderr, flush=True)
    return exit_code(err)


def report_rejected(command: str, source: str, reasons: list[str] | str,
                    file: TextIO | None = None) -> int:
    """One stderr line for a recording the quality check rejected; returns 1.

    >>> import io
    >>> buf = io.StringIO()
    >>> report_rejected("intervals", "a.csv", ["short: 0.5 s"], file=buf)
    1
    >>> buf.getvalue()
    'detak intervals: rejected: a.csv: short: 0.5 s\\n'
    """
    why = reasons if isinstance(reasons, str) else "; ".join(reasons)
    why = " ".join(why.split()) or "rejected by the quality check"
    print(f"detak {command}: rejected: {source}: {why}", file=file or sys.stderr, flush=True)
    return EXIT_FAILED


def run_command(command: str, func: Callable[[], int | None], *, debug: bool = False) -> int:
    """Run one sub-command: its exit status, or one stderr line and 1/2 for an error.

    ``debug`` lets errors raise with their traceback. A sub-command's own
    ``SystemExit("detak X: ...")`` is printed as it is.

    >>> from detak.data.sources import expand_source
    >>> run_command("quality", lambda: expand_source("nosuch://1"))
    1
    """
    try:
        return int(func() or 0)
    except BrokenPipeError:  # `detak ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"detak {command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as stop:
        if debug or not isinstance(stop.code, str):
            raise
        print(" ".join(stop.code.split()), file=sys.stderr)
        return EXIT_FAILED
    except Exception as err:  # noqa: BLE001 - one line for the user; debug re-raises
        if debug:
            raise
        return report(command, err)
