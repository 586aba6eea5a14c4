"""Reading an untrusted JSON payload (a Telegram update, a WhatsApp notification) field by
field: every value's type is checked where it is read, and a value that is missing or of
another type is refused naming the field by its path (`message without chat.id`,
`message.date must be a whole number, not true`).

JSON's `true` is not a number here (Python's bool is an int), a list is not a name, and
an object is not a text: nothing of the wrong type is turned into text by `str()`.
"""

from __future__ import annotations

from chatcrm.importers.limits import excerpt

MAX_WHOLE = 1 << 63  # whole numbers (ids, times) beyond 64 bits are nobody's


class Malformed(ValueError):
    """A field missing or of the wrong type; the message names it by its path."""


def shown(value) -> str:
    """A JSON value as an error line quotes it: short, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return excerpt(str(value))
    if isinstance(value, str):
        return repr(excerpt(value))
    return "a list" if isinstance(value, list) else "an object"


def whole(value) -> bool:
    """A JSON whole number (not true/false, not 1.0), within 64 bits."""
    return type(value) is int and -MAX_WHOLE < value < MAX_WHOLE


class Fields:
    """One JSON object of a payload, `path` naming it (`message`, `message.chat`)."""

    __slots__ = ("value", "path")

    def __init__(self, value, path: str):
        if type(value) is not dict:
            raise Malformed(f"{path} must be an object, not {shown(value)}")
        self.value = value
        self.path = path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}"

    def _missing(self, key: str) -> Malformed:
        root, _, inner = self.path.partition(".")
        return Malformed(f"{root} without {inner + '.' if inner else ''}{key}")

    def _given(self, key: str, required: bool):
        """The field's value; None when absent or null, refused then when `required`."""
        value = self.value.get(key)
        if value is None and required:
            raise self._missing(key)
        return value

    def _wrong(self, key: str, what: str) -> Malformed:
        return Malformed(f"{self._name(key)} must be {what}, not {shown(self.value[key])}")

    def has(self, key: str) -> bool:
        """The field is there and not null."""
        return self.value.get(key) is not None

    def keys(self) -> list[str]:
        return list(self.value)

    def object(self, key: str, *, required: bool = False) -> "Fields | None":
        value = self._given(key, required)
        if value is None:
            return None
        if type(value) is not dict:
            raise self._wrong(key, "an object")
        return Fields(value, self._name(key))

    def items(self, key: str) -> list:
        """A list (empty when absent or null), its items unchecked."""
        value = self.value.get(key)
        if value is None:
            return []
        if type(value) is not list:
            raise self._wrong(key, "a list")
        return value

    def objects(self, key: str) -> list["Fields"]:
        """A list of objects (empty when absent or null)."""
        return [Fields(item, f"{self._name(key)}[{n}]") for n, item in enumerate(self.items(key))]

    def text(self, key: str, *, required: bool = False) -> str | None:
        """A string; None when absent or null (refused when required)."""
        value = self._given(key, required)
        if value is None:
            return None
        if type(value) is not str:
            raise self._wrong(key, "a string")
        return value

    def whole(self, key: str, *, required: bool = False) -> int | None:
        """A whole number within 64 bits; None when absent or null (refused when required)."""
        value = self._given(key, required)
        if value is None:
            return None
        if not whole(value):
            raise self._wrong(key, "a whole number")
        return value

    def digits(self, key: str, *, required: bool = False, most: int = 20) -> str | None:
        """A string of 1 to `most` ASCII digits (a phone number, a Unix time as text)."""
        value = self._given(key, required)
        if value is None:
            return None
        if type(value) is not str or not (0 < len(value) <= most and value.isascii() and value.isdigit()):
            raise self._wrong(key, f"a string of digits (at most {most})")
        return value

    def number(self, key: str) -> int | float | None:
        """A number (a latitude); None when absent or null."""
        value = self.value.get(key)
        if value is None:
            return None
        if type(value) not in (int, float) or (type(value) is int and not whole(value)):
            raise self._wrong(key, "a number")
        return value

    def flag(self, key: str) -> bool:
        """true or false; false when absent or null."""
        value = self.value.get(key)
        if value is None:
            return False
        if type(value) is not bool:
            raise self._wrong(key, "true or false")
        return value

    def scalar(self, key: str) -> str | None:
        """A string, or a whole number shown as digits (an id either way)."""
        value = self.value.get(key)
        if value is None:
            return None
        if type(value) is str:
            return value
        if whole(value):
            return str(value)
        raise self._wrong(key, "a string or a whole number")
