"""The command line's reference, generated from the argument parser: every command, its
arguments and options with their meaning and default. The documentation's CLI page is this
text; a test checks that no option the parser accepts is missing from it."""

from __future__ import annotations

import argparse

from ablate.cli.parser import build_parser


def commands() -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Every ``ablate`` command's own parser and one-line help, in ``ablate --help``'s order."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    return {name: (command, helps.get(name, "")) for name, command in sub.choices.items()}


def options(command: argparse.ArgumentParser) -> list[argparse.Action]:
    """A command's arguments and options, ``--help`` left out."""
    return [a for a in command._actions if not isinstance(a, argparse._HelpAction)]


def markdown() -> str:
    """One section per command: its use, then a table of its arguments and options."""
    parts = []
    for name, (command, help_text) in commands().items():
        parts += [f"## `ablate {name}`", "", _sentence(help_text), "",
                  "| argument | meaning | default |", "| --- | --- | --- |"]  # fmt: skip
        for action in options(command):
            parts.append(f"| {_name(action)} | {_cell(action.help or '')} | {_default(action)} |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _name(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.dest.upper()}`"
    metavar = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
    return ", ".join(f"`{o}{metavar}`" for o in action.option_strings)


def _default(action: argparse.Action) -> str:
    """The default, as typed on the command line; nothing where there is none to type (an
    empty list or text: the option is simply left out)."""
    value = action.default
    if value in (None, False, argparse.SUPPRESS, "", []) or not action.option_strings:
        return ""
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("%%", "%")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("." if text and not text.endswith(".") else "")
