"""A reader for Fluentd's config syntax, enough for the tests: directives, their arguments and parameters.

``<source>``, ``<match pattern>``, ``<label @NAME>`` and nested sections such as ``<buffer>`` become
``Directive``s; ``key value`` lines become parameters (the value is the rest of the line). Comments and
blank lines are skipped; an unclosed or mismatched section is an error, as it is for Fluentd.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_OPEN = re.compile(r"<([a-zA-Z_@][\w@.-]*)(?:\s+(.+?))?\s*>")
_CLOSE = re.compile(r"</([a-zA-Z_@][\w@.-]*)\s*>")
_PARAM = re.compile(r"(@?[a-zA-Z_][\w.-]*)(?:\s+(.*))?")


@dataclass
class Directive:
    name: str
    argument: str = ""
    params: dict[str, str] = field(default_factory=dict)
    children: list[Directive] = field(default_factory=list)

    def all(self, name: str) -> list[Directive]:
        return [child for child in self.children if child.name == name]

    def one(self, name: str) -> Directive:
        (child,) = self.all(name)
        return child


def parse(text: str) -> Directive:
    root = Directive("root")
    stack = [root]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if opened := _OPEN.fullmatch(line):
            directive = Directive(opened[1], opened[2] or "")
            stack[-1].children.append(directive)
            stack.append(directive)
        elif closed := _CLOSE.fullmatch(line):
            if len(stack) == 1 or stack[-1].name != closed[1]:
                raise ValueError(f"line {number}: </{closed[1]}> closes nothing open")
            stack.pop()
        elif param := _PARAM.fullmatch(line):
            if len(stack) == 1:
                raise ValueError(f"line {number}: parameter {param[1]} outside any section")
            stack[-1].params[param[1]] = (param[2] or "").strip()
        else:
            raise ValueError(f"line {number}: cannot read {line!r}")
    if len(stack) > 1:
        raise ValueError(f"<{stack[-1].name}> is never closed")
    return root
