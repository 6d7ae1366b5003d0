"""Sessions: ``nox`` runs tests on every Python found, lint, typecheck and examples."""

from __future__ import annotations

import difflib
import pathlib
import re
import subprocess
import sys

import nox

nox.needs_version = ">=2025.2.9"
nox.options.sessions = ["tests", "lint", "typecheck", "examples"]
# A fresh machine often has one Python: skip the others rather than fail,
# even where CI is set (nox then defaults to failing).
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True

ROOT = pathlib.Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = [
    classifier.rpartition(" :: ")[2]
    for classifier in PYPROJECT["project"]["classifiers"]
    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", classifier)
]


def install_groups(session: nox.Session, *groups: str) -> None:
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite, on each supported Python that is installed."""
    session.install(".")
    install_groups(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff's linter and formatter check."""
    install_groups(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, the public-API type tests and the tests."""
    session.install(".")
    install_groups(session, "typecheck")
    session.run("mypy", "trio_supervisor", "tests", "examples")


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example and compare its output with the ``.out`` file beside it."""
    session.install(".")
    failures = []
    for script in sorted((ROOT / "examples").glob("*.py")):
        expected = script.with_suffix(".out").read_text()
        result = subprocess.run(
            [session.virtualenv.bin + "/python", str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0 or result.stdout != expected:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    result.stdout.splitlines(keepends=True),
                    "expected",
                    "actual",
                )
            )
            failures.append(
                f"{script.name}: exit {result.returncode}\n{diff}{result.stderr}"
            )
        else:
            session.log(f"{script.name}: output as expected")
    if failures:
        session.error("\n".join(failures))


@nox.session(python=PYTHONS[-1])
def bench(session: nox.Session) -> None:
    """The benchmarks (not in the default run): library against bare Trio, and
    triotp where it installs; writes benchmarks/results/latest.json.

    On the newest supported Python, where triotp 0.3.1 installs; elsewhere use
    ``nox -s bench --force-python 3.X`` (triotp is then skipped with a note).
    Arguments after ``--`` go to run_all.py, e.g. ``nox -s bench -- --quick``.
    """
    session.install(".")
    install_groups(session, "bench")
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session(default=False)
def soak(session: nox.Session) -> None:
    """The reliability soak (minutes): a million restarts, 100,000 add-and-remove
    cycles, and the property test with a large budget. Not run by default."""
    session.install(".")
    install_groups(session, "test")
    session.run("python", "soak/soak.py", *session.posargs)
    session.run(
        "pytest",
        "tests/test_stateful.py",
        env={"TRIO_SUPERVISOR_PROPERTY_EXAMPLES": "1000"},
    )


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """The documentation site (not in the default run): mkdocs-material with the
    API reference from the docstrings, built with warnings as errors into site/.
    ruff (from the lint group) formats the signatures."""
    session.install(".")
    install_groups(session, "lint", "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs)


if __name__ == "__main__":
    sys.exit("run this file with nox")
