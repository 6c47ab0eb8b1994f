"""The configuration reference page, generated from the models.

Regenerate the committed page with::

    python -m gateway.config.reference > docs/configuration.md
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ByteSize, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from gateway.config._durations import TypeLabel, format_duration
from gateway.config._models import ENV_DELIMITER, ENV_PREFIX, MiB, Settings

_INTRO = f"""\
# Configuration reference

<!-- Generated from the models in gateway/config/ by
     `python -m gateway.config.reference > docs/configuration.md`; do not edit. -->

## Where the configuration comes from

1. The main file: the path given on the command line, else the file named by
   `ECH_GATEWAY_CONFIG`, else `./gateway.toml`, else
   `/etc/ech-gateway/gateway.toml`. `ech-gateway init DIR` writes a commented
   one.
2. `conf.d/*.toml` next to the main file, in name order. Each file overrides
   the keys it sets, key by key; tables are merged. Other files there
   (`20-canton.conf`, a `.bak`, an editor's `.toml~`) are not read:
   `ech-gateway check-config` warns of each.
3. Environment variables `{ENV_PREFIX}<SECTION>{ENV_DELIMITER}<KEY>`, with
   `{ENV_DELIMITER}` between table names, override the files, e.g.
   `{ENV_PREFIX}STORE{ENV_DELIMITER}PATH=/var/lib/ech-gateway/gateway.db` or
   `{ENV_PREFIX}PARTNERS{ENV_DELIMITER}CANTON{ENV_DELIMITER}RETRY{ENV_DELIMITER}MAX_ATTEMPTS=3`.
   A value starting with `[` or `{{` is read as JSON:
   `{ENV_PREFIX}SOURCES{ENV_DELIMITER}REGISTRY{ENV_DELIMITER}ROUTE_TO='["canton"]'`.

Conventions:

- **Secrets from files:** any text key `<key>` may be given as
  `<key>_file = "/path"`; its value is the file's content without the
  line end after it (`\\n` or `\\r\\n`); a file that is empty or holds more
  than one line (an empty line at its end) is refused. Keys of type *secret
  string* hide their value when printed.
- **Relative paths** are resolved against the directory of the file that sets
  them (environment variables: the working directory). This holds for the
  options of plugins too.
- **Durations** take a unit: `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"`. A
  number without unit (`keep = 90`: 90 seconds, or days?) is refused, naming
  the key; only `0` needs none.
- **Sizes** are text with a unit (`"20MiB"`, `"1GB"`, `"512KiB"`) or a number
  of bytes (`1048576`); a number below 1024 is refused as a forgotten unit
  (`"512B"` if bytes are meant), `0` aside.
- **Names** of sources and partners use `a-z`, `0-9`, `_` and `-`, and start
  with a letter or digit.

`ech-gateway check-config` lists every problem with the file (or environment
variable) that set the key, the key and the reason.
"""

_PLUGIN_OPTIONS = {
    "sources": "Every other key of `[sources.<name>]` is an option of the source "
    "type, validated by the plugin that provides it (`ech-gateway plugins`).",
    "partners": "The table `[partners.<name>.<transport>]` holds the options of the "
    "transport, validated by the plugin that provides it (`ech-gateway plugins`).",
}


_ARRAYS = {
    "rules": "See the README, section *Rules*, and `ech-gateway rules explain FILE`.",
}


def render_reference() -> str:
    """The Markdown reference of every configuration key, built-in plugin options included."""
    lines = [_INTRO]
    for name, field in Settings.model_fields.items():
        if field.exclude:
            continue
        annotation = field.annotation
        if get_origin(annotation) is dict:
            model = get_args(annotation)[1]
            lines += _section(f"{name}.<name>", model, field, _PLUGIN_OPTIONS[name])
        elif get_origin(annotation) is list:  # an array of tables: [[rules]]
            model = get_args(annotation)[0]
            lines += _table(f"## `[[{name}]]`", field.description or "", model, name,
                            _ARRAYS.get(name, ""))
        else:
            lines += _section(name, annotation, field)
    return "\n".join(lines + _plugin_types())


def _plugin_types() -> list[str]:
    """The options of every source and transport type the installed plugins provide."""
    from gateway.plugins import get_plugin_manager, source_types, transport_types

    pm = get_plugin_manager()
    lines = ["# Source and transport types", "",
             "The options the installed plugins add (`ech-gateway plugins` lists them).", ""]
    for name, t in sorted(source_types(pm).items()):
        lines += _table(f"## Source type `{name}`: keys of `[sources.<name>]`",
                        t.description, t.options)
    for name, tt in sorted(transport_types(pm).items()):
        lines += _table(f"## Transport `{name}`: keys of `[partners.<name>.{name}]`",
                        tt.description, tt.options)
    return lines


def _section(table: str, model: Any, field: FieldInfo, note: str = "") -> list[str]:
    """The heading, table and note of ``[table]`` (``field``), then of its sub-tables."""
    return _table(f"## `[{table}]`", field.description or "", model, table, note)


def _table(heading: str, description: str, model: Any, table: str = "",
           note: str = "") -> list[str]:
    lines = [heading, "", description, ""]
    lines += ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    nested = []
    for name, key in model.model_fields.items():
        if _is_model(key.annotation):
            nested.append((f"{table}.{name}", key))
        elif name != "options":
            row = (f"`{name}`", _type(key), _default(key), key.description or "")
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if note:
        lines += [note, ""]
    for sub_table, sub_field in nested:
        lines += _section(sub_table, sub_field.annotation, sub_field)
    return lines


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type(field: FieldInfo) -> str:
    labels = [m.name for m in field.metadata if isinstance(m, TypeLabel)]
    return labels[0] if labels else _type_name(field.annotation)


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal and len(get_args(annotation)) == 1:
        return f'`"{get_args(annotation)[0]}"`'
    if origin is Literal:
        return "one of " + ", ".join(f'`"{value}"`' for value in get_args(annotation))
    if origin is Annotated:
        labels = [m.name for m in annotation.__metadata__ if isinstance(m, TypeLabel)]
        return labels[0] if labels else _type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [m for m in get_args(annotation) if m is not type(None)]
        return " or ".join(_type_name(m) for m in members) + ", optional"
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}s"
    if origin is dict:
        value = get_args(annotation)[1]
        return "table" if value is Any else f"table of {_type_name(value)}s"
    names = {
        ByteSize: "size",
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        Path: "path",
        SecretStr: "secret string",
    }
    return names.get(annotation, str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory in (list, dict):
        return "`[]`" if field.default_factory is list else "`{}`"
    if field.default_factory is not None:
        return "see description"
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if _type(field) == "duration":
        return f'`"{format_duration(value)}"`'
    if isinstance(value, ByteSize) and value % MiB == 0:
        return f'`"{value // MiB}MiB"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (str, Path)):
        return f'`"{value}"`'
    if isinstance(value, list):
        return "`[" + ", ".join(f'"{item}"' for item in value) + "]`"
    return f"`{value}`"


if __name__ == "__main__":
    sys.stdout.write(render_reference())
