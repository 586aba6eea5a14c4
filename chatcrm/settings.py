"""Personal settings: the file, and which value wins (README "Settings").

`$CHATCRM_CONFIG`, else `$XDG_CONFIG_HOME/chatcrm/config.toml`, else
`~/.config/chatcrm/config.toml` holds defaults (`db`, `tz`, `author`, `sla`, `format`), saved
views (`[views.NAME]`, for `list --view NAME`) and canned replies (`[replies.NAME]`, for
`reply --template NAME`). A value comes from the command's option, else the environment,
else the file, else the built-in default; `Setting.source` says which.

Read at the edge only (the CLI asks this module); it knows nothing of the database. Every
problem with the file — not TOML, an unknown key, view or reply, a value of the wrong kind,
an unknown placeholder — is a UsageError naming the file and the line.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from chatcrm.errors import UsageError

def _toml():
    """The TOML parser, loaded only when there is a settings file to read."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


# The top-level keys, each with its environment variable (or None).
DEFAULTS_ENV = {"db": "CHATCRM_DB", "tz": "CHATCRM_TZ", "author": "CHATCRM_AGENT", "sla": "CHATCRM_SLA",
                "format": None}
VIEW_KEYS = ("agent", "status", "sla", "limit", "format")
REPLY_KEYS = ("text",)
PLACEHOLDERS = ("contact", "deal", "agent")
_TABLES = ("views", "replies")


@dataclass(frozen=True)
class Setting:
    """An effective value and where it came from: `option`, `environment ($NAME)`,
    `PATH:LINE` (the file) or `default`."""

    value: object
    source: str


@dataclass
class Settings:
    path: Path
    explicit: bool  # named by $CHATCRM_CONFIG
    exists: bool = False
    values: dict[str, Setting] = field(default_factory=dict)  # top-level keys of the file
    views: dict[str, dict[str, Setting]] = field(default_factory=dict)
    replies: dict[str, Setting] = field(default_factory=dict)  # name -> its text
    reply_lines: dict[str, int] = field(default_factory=dict)

    def value(self, name: str, option, env: Mapping[str, str], default=None) -> Setting:
        """Option, then environment, then the file, then the built-in default."""
        if option is not None:
            return Setting(option, "option")
        variable = DEFAULTS_ENV.get(name)
        if variable and env.get(variable):
            return Setting(env[variable], f"environment (${variable})")
        if name in self.values:
            return self.values[name]
        return Setting(default, "default")

    def view(self, name: str) -> dict[str, Setting]:
        if name not in self.views:
            raise UsageError(f"unknown view {name!r} in {self.path}{_known(self.views, '[views.NAME]')}")
        return self.views[name]

    def reply(self, name: str) -> str:
        if name not in self.replies:
            raise UsageError(f"unknown reply template {name!r} in {self.path}{_known(self.replies, '[replies.NAME]')}")
        return self.replies[name].value


def _known(table: dict, shape: str) -> str:
    if not table:
        return f" (it defines none: add a {shape} table)"
    return f" (it defines: {', '.join(sorted(table))})"


def config_path(env: Mapping[str, str]) -> tuple[Path, bool]:
    """The settings file, and whether $CHATCRM_CONFIG named it."""
    if env.get("CHATCRM_CONFIG"):
        return Path(env["CHATCRM_CONFIG"]).expanduser(), True
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "chatcrm" / "config.toml", False


def load(env: Mapping[str, str], check=None) -> Settings:
    """The settings in the file (none when there is no file at the default place).

    `check(name, value, view=False)` validates a value (raising ValueError with the
    reason; `view`: a saved view's, which may also be `format = "ids"`); the error then
    names the file and the value's line."""
    path, explicit = config_path(env)
    settings = Settings(path, explicit)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_FILE + 1)
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"no settings file {path} (named by $CHATCRM_CONFIG)")
        return settings
    except PermissionError as error:
        if not explicit and not _visible(path):
            return settings  # a folder on the way this user may not enter: no file of theirs
        raise UsageError(f"cannot read settings file {path}: {error.strerror or error}")
    except OSError as error:
        raise UsageError(f"cannot read settings file {path}: {error.strerror or error}")
    settings.exists = True
    if len(raw) > MAX_FILE:
        raise UsageError(f"{path}: larger than {MAX_FILE >> 10} KiB; not a settings file")
    tomllib = _toml()
    try:
        text = raw.decode("utf-8")
        _check_depth(text, path)
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text")
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        line = found.group(1) if found else getattr(error, "lineno", "?")
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise UsageError(f"{path}:{line}: not valid TOML: {reason}")
    lines = _key_lines(text)

    def where(*keys: str) -> str:
        return f"{path}:{lines.get(keys, lines.get(keys[:1], '?'))}"

    def problem(keys: tuple, reason: str) -> UsageError:
        return UsageError(f"{where(*keys)}: {reason}")

    for key, value in data.items():
        if key in _TABLES:
            continue
        if key not in DEFAULTS_ENV:
            raise problem((key,), f"unknown setting {key!r} (use {', '.join(DEFAULTS_ENV)}, [views.NAME] or "
                                  "[replies.NAME])")
        settings.values[key] = Setting(_checked(key, value, check, lambda r, k=key: problem((k,), r)), where(key))
    for table in _TABLES:
        entries = data.get(table, {})
        if not isinstance(entries, dict):
            raise problem((table,), f"{table!r} must be tables such as [{table}.NAME]")
        allowed = VIEW_KEYS if table == "views" else REPLY_KEYS
        for name, body in entries.items():
            if not isinstance(body, dict):
                raise problem((table, name), f"[{table}.{name}] must be a table of {', '.join(allowed)}")
            checked: dict[str, Setting] = {}
            for key, value in body.items():
                keys = (table, name, key)
                if key not in allowed:
                    raise problem(keys, f"unknown key {key!r} in [{table}.{name}] (use {', '.join(allowed)})")
                if table == "replies":
                    value = _template(value, lambda r, k=keys: problem(k, r))
                in_view = None if check is None else (lambda k, v: check(k, v, view=True))
                checked[key] = Setting(_checked(key, value, in_view if table == "views" else check,
                                                lambda r, k=keys: problem(k, r)), where(*keys))
            if table == "views":
                settings.views[name] = checked
            else:
                if "text" not in checked:
                    raise problem((table, name), f"[replies.{name}] has no text")
                settings.replies[name] = checked["text"]
    return settings


def _visible(path: Path) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _checked(key: str, value, check, fail):
    if key == "limit":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise fail(f"limit must be a whole number, 0 or more, not {value!r}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{key} must be a text, not {value!r}")
    if check is not None:
        try:
            check(key, value)
        except ValueError as error:
            raise fail(f"{key}: {error}")
    return value


def _template(value, fail) -> str:
    """A canned reply's text, its placeholders checked: only {contact}, {deal}, {agent}."""
    if not isinstance(value, str) or not value.strip():
        raise fail(f"text must be a text, not {value!r}")
    import string

    try:
        for _, name, spec, conversion in string.Formatter().parse(value):
            if name is None:
                continue
            if name in PLACEHOLDERS and (spec or conversion):
                shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise fail(f"{shown}: a placeholder takes no conversion or format; write {{{name}}}")
            if name not in PLACEHOLDERS:
                raise fail(f"unknown placeholder {{{name}}} (use {', '.join('{' + p + '}' for p in PLACEHOLDERS)};"
                           " {{ and }} write braces)")
    except ValueError as error:
        raise fail(f"text: {error} (placeholders are {{contact}}, {{deal}}, {{agent}}; {{{{ and }}}} write braces)")
    return value


def fill(template: str, *, contact: str | None, deal: str, agent: str) -> str:
    """A canned reply with its placeholders filled."""
    return template.format(contact=contact or "", deal=deal, agent=agent)


# Compiled when a settings file is read, not by every command.
_TABLE_LINE = r"\s*\[\s*([^\]\[]+?)\s*\]\s*(#.*)?$"
_KEY_LINE = r"\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*="


MAX_FILE = 1 << 20  # bytes of a settings file
MAX_DEPTH = 32  # nesting of its arrays and inline tables (the parser recurses)


def _check_depth(text: str, path) -> None:
    """Refuse arrays or inline tables nested deeper than MAX_DEPTH, naming the line, before
    the parser recurses into them (strings and comments are skipped)."""
    depth, line, quote, i = 0, 1, "", 0
    while i < len(text):
        char = text[i]
        if char == "\n":
            line += 1
            if quote in ('"', "'"):
                quote = ""  # an unterminated one-line string: the parser will say so
        elif quote:
            if char == "\\" and quote in ('"', '"""'):
                i += 1
            elif text.startswith(quote, i):
                i += len(quote) - 1
                quote = ""
        elif char == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end - 1
        elif char in "\"'":
            quote = char * 3 if text.startswith(char * 3, i) else char
            i += len(quote) - 1
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise UsageError(f"{path}:{line}: nested deeper than {MAX_DEPTH} levels; not a settings file")
        elif char in "]}":
            depth = max(0, depth - 1)
        i += 1


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line of each table and key of a TOML text, as (table…, key) → line number
    (for messages: tomllib gives none)."""
    table_line, key_line = re.compile(_TABLE_LINE), re.compile(_KEY_LINE)
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = table_line.match(line)
        if header and not line.lstrip().startswith("[["):
            table = tuple(part.strip().strip("\"'") for part in header.group(1).split("."))
            lines.setdefault(table, number)
            continue
        key = key_line.match(line)
        if key:
            lines.setdefault((*table, key.group(1).strip("\"'")), number)
    return lines
