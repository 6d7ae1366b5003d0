"""The public API: ``__all__``, where names say they live, and their docstrings."""

from __future__ import annotations

import doctest
import inspect
import re
import types

import pytest

import trio_supervisor

PUBLIC = sorted(
    name
    for name, value in vars(trio_supervisor).items()
    if not name.startswith("_") and not isinstance(value, types.ModuleType)
)
EXPORTED = list(trio_supervisor.__all__)


def test_all_is_sorted() -> None:
    """``__all__`` lists its names in sorted order, once each."""
    assert sorted(set(EXPORTED)) == EXPORTED


def test_all_matches_the_public_names() -> None:
    """Every public name of the package is in ``__all__``, and nothing else."""
    assert sorted(EXPORTED) == PUBLIC


def test_the_issue_names_are_exported() -> None:
    """The names of the core contract are all importable from the package."""
    assert {
        "Config",
        "Service",
        "Status",
        "StatusUpdate",
        "Supervisor",
        "current_logger",
        "new_service",
        "open_supervisor",
    } <= set(EXPORTED)


@pytest.mark.parametrize("name", EXPORTED)
def test_exported_name_says_it_lives_in_the_package(name: str) -> None:
    """Each exported name's ``__module__`` is ``trio_supervisor``, not a private
    module, so tracebacks and docs show the public path."""
    assert getattr(getattr(trio_supervisor, name), "__module__", None) == (
        "trio_supervisor"
    )


def has_example(doc: str) -> bool:
    """A ``>>>`` session, or a code block: an indented block after a line
    that ends with a colon and a blank line (Markdown, as mkdocstrings reads)."""
    return ">>>" in doc or re.search(r":\n\n {4,}\S", doc) is not None


@pytest.mark.parametrize("name", EXPORTED)
def test_exported_name_has_a_docstring_with_an_example(name: str) -> None:
    """Each exported name documents itself and shows how it is used."""
    value = getattr(trio_supervisor, name)
    doc = value.__doc__
    assert isinstance(doc, str), name
    assert has_example(inspect.cleandoc(doc)), doc


def public_members() -> list[str]:
    members = []
    for name in EXPORTED:
        value = getattr(trio_supervisor, name)
        if not inspect.isclass(value):
            continue
        for member, attribute in vars(value).items():
            if member.startswith("_"):
                continue
            if inspect.isfunction(attribute) or isinstance(attribute, property):
                members.append(f"{name}.{member}")
    return members


@pytest.mark.parametrize("path", public_members())
def test_public_methods_and_properties_have_docstrings(path: str) -> None:
    """Every public method and property of an exported class is documented."""
    owner, member = path.split(".")
    attribute = vars(getattr(trio_supervisor, owner))[member]
    assert (attribute.__doc__ or "").strip(), path


def test_docstring_examples_run() -> None:
    """The ``>>>`` examples in the public docstrings give what they show."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    globs = {name: getattr(trio_supervisor, name) for name in EXPORTED}
    tests = finder.find(trio_supervisor, "trio_supervisor", globs=globs)
    for name in EXPORTED:
        value = getattr(trio_supervisor, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            tests += finder.find(value, name, globs=dict(globs))
    examples = sum(len(test.examples) for test in tests)
    for test in tests:
        runner.run(test)
    assert examples >= 4
    assert runner.failures == 0
