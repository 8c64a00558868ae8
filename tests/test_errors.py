"""The exception hierarchy: every error lives in ``shortcodes.errors``, derives from
``ShortcodeError`` and survives pickling with its message and attributes."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest

import shortcodes
from shortcodes import errors
from shortcodes.errors import (
    ConfigError,
    InsufficientCredits,
    Problem,
    ShortcodeError,
    ShortcodeRenderError,
    make_problem,
)

# Modules that cannot be imported on their own: ``__main__`` runs the CLI and exits, and the
# Alembic env script runs only inside Alembic's migration context.
NOT_IMPORTABLE = {"shortcodes.__main__", "shortcodes.migrations.env"}


def error_classes() -> list[type[ShortcodeError]]:
    """Every ShortcodeError subclass defined in shortcodes.errors (a new class joins by itself)."""
    found = [
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj)
        and issubclass(obj, ShortcodeError)
        and obj.__module__ == errors.__name__
    ]
    return sorted(found, key=lambda cls: cls.__name__)


PROBLEM = make_problem("ab\n[memb_if x]", 3, "something is wrong", width=2)

#: One sample value per annotation an error's __init__ uses; a new annotation needs a line here.
SAMPLES: dict[str, Any] = {
    "str": "text",
    "int": 5,
    "int | None": 6,
    "Path | str": "themes/plain/shortcodes/box.html",
    "Problem": PROBLEM,
    "BaseException": ZeroDivisionError("division by zero"),
}


def sample_instance(cls: type[ShortcodeError]) -> ShortcodeError:
    """An instance of ``cls`` built from its __init__ signature, every argument distinct."""
    if not inspect.isfunction(cls.__init__):  # Exception's own __init__: a message
        return cls(f"a {cls.__name__} message")
    params = list(inspect.signature(cls).parameters.values())
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for number, param in enumerate(params, start=1):
        annotation = str(param.annotation)
        assert annotation in SAMPLES, f"add a sample for {annotation!r} ({cls.__name__})"
        value = SAMPLES[annotation]
        # Distinct values per parameter, so swapped attributes cannot compare equal.
        if isinstance(value, str) and value is not SAMPLES["Path | str"]:
            value = f"{param.name}-{number}"
        elif isinstance(value, int):
            value += number
        if param.kind is param.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_round_trips_through_pickle(cls: type[ShortcodeError]) -> None:
    """pickle.loads(pickle.dumps(e)) gives the same class, message, args and attributes."""
    original = sample_instance(cls)
    copy = pickle.loads(pickle.dumps(original))  # noqa: S301 - our own bytes
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert copy.args == original.args
    assert vars(copy) == vars(original)


def test_the_pickle_walk_covers_the_whole_hierarchy() -> None:
    """The introspected list is the hierarchy itself, not an accidentally empty walk."""
    names = {cls.__name__ for cls in error_classes()}
    assert {
        "ShortcodeError",
        "ShortcodeSyntaxError",
        "ShortcodeRenderError",
        "ConditionSyntaxError",
        "GateError",
        "ConfigError",
        "ThemeError",
        "HookError",
        "ActionTokenExpired",
        "StoreError",
        "InsufficientCredits",
        "InsufficientPoints",
    } <= names


def test_attributes_survive_pickling_with_their_values() -> None:
    """A concrete case, spelled out: the store's refusal keeps field, needed and balance."""
    copy = pickle.loads(pickle.dumps(InsufficientCredits("_Credits", 50, 20)))  # noqa: S301
    assert (copy.field, copy.needed, copy.balance) == ("_Credits", 50, 20)
    assert str(copy) == "You need 50 credits; you have 20"


def test_a_render_error_keeps_its_position_and_notes_through_pickle() -> None:
    """Name, line, column and any notes travel; the cause does not (pickle never sends it)."""
    error = ShortcodeRenderError("memb_if", 3, 7, ZeroDivisionError("division by zero"))
    error.add_note("while rendering page.md")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301
    assert (copy.name, copy.line, copy.column) == ("memb_if", 3, 7)
    assert str(copy) == "[memb_if] at line 3, column 7 failed: division by zero"
    assert copy.__notes__ == ["while rendering page.md"]


def _modules() -> Iterator[Any]:
    yield shortcodes
    for info in pkgutil.walk_packages(shortcodes.__path__, "shortcodes."):
        if info.name not in NOT_IMPORTABLE:
            yield importlib.import_module(info.name)


def test_every_exception_class_in_the_package_is_defined_in_shortcodes_errors() -> None:
    """No module but shortcodes.errors defines an exception."""
    elsewhere = {
        f"{obj.__module__}.{obj.__qualname__}"
        for module in _modules()
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == module.__name__
        and module.__name__ != errors.__name__
    }
    assert elsewhere == set()


def test_every_error_in_shortcodes_errors_derives_from_shortcode_error() -> None:
    """One hierarchy: every exception class of the module has ShortcodeError as an ancestor."""
    exceptions = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    }
    assert exceptions == {cls.__name__ for cls in error_classes()}


# -- ConfigError: the message format the check command prints ------------------------------------


def test_config_error_names_file_line_column_and_key() -> None:
    error = ConfigError("must be a whole number", file="site.toml", key="credits.cost", line=4)
    assert str(error) == "site.toml:4:0: credits.cost: must be a whole number"
    assert error.format() == "site.toml:4:0: error: credits.cost: must be a whole number"
    assert (error.file, error.key, error.line, error.column) == ("site.toml", "credits.cost", 4, 0)
    assert error.reason == "must be a whole number"


def test_config_error_with_a_column() -> None:
    error = ConfigError("unknown key", file="site.toml", key="tags.x", line=12, column=3)
    assert str(error) == "site.toml:12:3: tags.x: unknown key"
    assert error.format() == "site.toml:12:3: error: tags.x: unknown key"


def test_config_error_without_a_line_leaves_out_the_position() -> None:
    error = ConfigError("is not valid TOML", file="site.toml", key="tags")
    assert str(error) == "site.toml: tags: is not valid TOML"
    assert error.format() == "site.toml: error: tags: is not valid TOML"


def test_config_error_without_a_key_leaves_out_the_key() -> None:
    error = ConfigError("cannot be read", file="site.toml", line=2, column=5)
    assert str(error) == "site.toml:2:5: cannot be read"
    assert error.format() == "site.toml:2:5: error: cannot be read"


def test_problem_pickles_inside_a_syntax_error() -> None:
    """The Problem a ShortcodeSyntaxError carries comes back equal (it is a frozen dataclass)."""
    copy = pickle.loads(pickle.dumps(errors.ShortcodeSyntaxError(PROBLEM)))  # noqa: S301
    assert isinstance(copy.problem, Problem)
    assert copy.problem == PROBLEM
    assert (copy.line, copy.column) == (PROBLEM.line, PROBLEM.column)
