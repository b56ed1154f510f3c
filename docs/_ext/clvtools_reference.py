"""Sphinx directives that generate the reference pages from the code itself, so they cannot drift.

- ``.. clvtools-setup-commands::`` the README's two set-up commands (its fenced blocks that
  run ``clvtools demo`` and ``pytest``), read from README.md at build time;
- ``.. clvtools-settings::`` one row per setting of :class:`clvtools.config.Settings`: name,
  command-line flag, default and the setting's own description;
- ``.. clvtools-cli::`` every command of the ``clvtools`` program (typer/click), with its
  usage line, help text and options other than the settings;
- ``.. clvtools-outputs::`` one row per file of the output manifest
  (:data:`clvtools.report.outputs.OUTPUTS`): name and meaning.

Each directive builds reStructuredText lines and parses them in place; nothing is written
into the source tree.
"""
from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

README = Path(__file__).resolve().parents[2] / "README.md"
_RST_SPECIAL = re.compile(r"([\\*`|_\[\]<>])")


def escape(text: str) -> str:
    """Plain text as reStructuredText: markup characters taken literally."""
    return _RST_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", str(text)))


def prose(text: str) -> str:
    """Help text as reStructuredText: ````code```` spans kept as code, the rest escaped."""
    parts = re.split(r"``(.+?)``", " ".join(str(text).split()))
    return "".join(literal(part) if i % 2 else escape(part) for i, part in enumerate(parts))


def literal(text: str) -> str:
    """Inline code (``text``), safe for any text without a double backquote."""
    return f"``{text}``" if text else ""


def list_table(header: list[str], rows: list[list[str]], widths: list[int]) -> list[str]:
    """A ``list-table`` of already-formatted cells."""
    lines = [".. list-table::", "   :header-rows: 1",
             f"   :widths: {' '.join(map(str, widths))}", ""]
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            lines.append(f"   {'*' if i == 0 else ' '} - {cell}")
    return [*lines, ""]


def setting_default(info) -> str:
    """A setting's default as a user writes it in the TOML file; empty when there is none."""
    value = info.get_default(call_default_factory=True)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def settings_lines() -> list[str]:
    from clvtools.config import Settings

    rows = [[literal(name), literal("--" + name.replace("_", "-")),
             literal(setting_default(info)), escape(info.description or "")]
            for name, info in Settings.model_fields.items()]
    return list_table(["setting", "flag", "default", "meaning"], rows, [18, 18, 14, 50])


def outputs_lines() -> list[str]:
    from clvtools.report.outputs import OUTPUTS

    rows = [[literal(output.name), escape(output.meaning)] for output in OUTPUTS]
    return list_table(["file", "content"], rows, [25, 75])


def help_lines(text: str) -> list[str]:
    """A command's help: prose paragraphs as text, indented or command lines as code."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", (text or "").strip()):
        rows = [row for row in paragraph.splitlines() if row.strip() != "\b"]
        if not rows:
            continue
        code = any(row.startswith(("  ", "$ ", "clvtools ")) for row in rows)
        if code:
            lines += [".. code-block:: text", ""]
            lines += ["   " + row.strip() for row in rows]
        else:
            lines.append(prose(" ".join(rows)))
        lines.append("")
    return lines


def cli_lines() -> list[str]:
    import typer

    from clvtools.cli import app
    from clvtools.config import Settings

    group = typer.main.get_command(app)
    lines: list[str] = []
    for name, command in group.commands.items():
        arguments = [p.name.upper() for p in command.params
                     if p.param_type_name == "argument"]
        usage = " ".join([f"clvtools {name}", "[OPTIONS]", *arguments])
        title = f"clvtools {name}"
        lines += [title, "-" * len(title), "", ".. code-block:: text", "", "   " + usage, ""]
        lines += help_lines(command.help or "")
        rows, settings = [], 0
        for param in command.params:
            described = Settings.model_fields.get(param.name)
            if described is not None and (getattr(param, "help", "") or "").startswith(
                    described.description or "\0"):   # a setting's own flag
                settings += 1
                continue
            if param.name == "help" or getattr(param, "hidden", False):
                continue
            # typer vendors its own click: tell arguments by their type name, not class
            if param.param_type_name == "argument":
                names = literal(param.name.upper())
            else:
                names = ", ".join(literal(o) for o in [*param.opts, *param.secondary_opts])
            default = None if callable(param.default) else param.default
            hidden = default is None or default is False or default == () or param.required
            rows.append([names, prose(getattr(param, "help", "") or ""),
                         "" if hidden else literal(str(default))])
        if rows:
            lines += list_table(["argument or option", "meaning", "default"], rows, [25, 60, 15])
        if settings:
            lines += [f"and every setting as a flag of the same name ({settings} flags, such "
                      "as ``--churn-after 26``): see :doc:`settings`.", ""]
    return lines


class _Generated(SphinxDirective):
    """Parse the reStructuredText lines that :meth:`lines` builds, in place."""

    has_content = False

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        holder = nodes.section()
        holder.document = self.state.document
        source = f"<{self.name}>"
        nested_parse_with_titles(self.state, StringList(self.lines(), source), holder)
        return holder.children


class SetupCommands(_Generated):
    """The fenced blocks of the README's set-up section, each after the sentence before it."""

    def lines(self) -> list[str]:
        self.env.note_dependency(str(README))
        text = README.read_text(encoding="utf-8")
        found = re.search(r"^## Set-up[^\n]*\n(.*?)(?=^## )", text, re.S | re.M)
        if found is None:
            raise self.error("README.md has no '## Set-up' section")
        pieces = re.split(r"```[^\n]*\n(.*?)```", found.group(1), flags=re.S)
        out = []
        for before, block in zip(pieces[0::2], pieces[1::2], strict=False):
            label = before.strip().split("\n\n")[-1]
            out += [escape(label), "", ".. code-block:: bash", ""]
            out += ["   " + line for line in block.strip().splitlines()] + [""]
        if not out:
            raise self.error("README.md's set-up section has no command")
        return out


class SettingsTable(_Generated):
    def lines(self) -> list[str]:
        return settings_lines()


class CommandLine(_Generated):
    def lines(self) -> list[str]:
        return cli_lines()


class OutputsTable(_Generated):
    def lines(self) -> list[str]:
        return outputs_lines()


def setup(app):
    app.add_directive("clvtools-setup-commands", SetupCommands)
    app.add_directive("clvtools-settings", SettingsTable)
    app.add_directive("clvtools-cli", CommandLine)
    app.add_directive("clvtools-outputs", OutputsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
