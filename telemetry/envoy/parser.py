"""Where an access-log line is parsed: one compiler for any Envoy format string, presets, auto-detection.

``compile_format`` turns a format string into an extractor (line -> EnvoyFields, or None when the line
does not fit). Text formats become one anchored regex whose groups are mapped to EnvoyFields by a
function generated once per format; JSON formats (a format string starting with ``{``, or the ``json``
preset) are decoded by msgspec into a struct of the keys read. ``compile_columns`` does the same for many
lines at once, as one column per field: the regex or the decoder is mapped over the lines in C and the
values transposed, so ``LineParser.parse_lines`` can hand whole columns to
``RecordAssembler.assemble_columns``. ``make_parser`` adds the Record assembly and, for ``auto``, detection
among the presets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from typing import Annotated, NamedTuple, TypeVar

import msgspec

from telemetry.envoy.errors import ParseError
from telemetry.envoy.istio import ASSEMBLED_FIELDS, RecordAssembler
from telemetry.envoy.operators import (
    FIELD_INDEX,
    FIELD_NAMES,
    NUMERIC_FIELDS,
    EnvoyFields,
    Operator,
    field_of,
    json_format_template,
    tokenize,
)
from telemetry.envoy.peers import PeerTable
from telemetry.envoy.presets import DETECTION_ORDER, PRESETS
from telemetry.model import Record, Workload

__all__ = ["ParseError", "LineParser", "compile_format", "make_parser", "resolve_format"]

log = logging.getLogger(__name__)

Extractor = Callable[[str], EnvoyFields | None]
Columns = list[Sequence[str]]  # one per EnvoyFields field, equally long
# Lines -> runs (start, end, columns) covering them in order: the EnvoyFields of lines[start:end] as
# columns, or None for lines that do not fit (they go one by one).
Run = tuple[int, int, Columns | None]
ColumnExtractor = Callable[[Sequence[str]], list[Run]]
# A block of lines (UTF-8 bytes, newline-separated, without the last newline) -> their columns, or None
# unless every line is an entry of the format and the block reads at once (see LineParser.parse_block).
BlockExtractor = Callable[[bytes], Columns | None]
_T = TypeVar("_T")
_astuple = msgspec.structs.astuple

# How many quotes beyond the format's own a line may carry before the lenient pass is not tried:
# each extra quote multiplies the ways the lenient regex can split the line.
_MAX_EXTRA_QUOTES = 8
_MAX_LENIENT_CHARS = 16_384
# What Envoy may print as a JSON number (typed JSON formats): the counters and %GRPC_STATUS_NUMBER%.
_NUMBER_FIELDS = NUMERIC_FIELDS | {"grpc_status"}
_GRPC_STATUS = FIELD_INDEX["grpc_status"]
_MAX_RESTARTS = 3  # format switches in one batch before its other lines go one at a time


# Envoy and pilot-agent's own messages: "2024-05-04T17:22:59.048Z\tinfo\t..." or "[2024-05-04 17:22:59.048][12][info]".
_PROXY_OWN_LOG = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z?\t[a-z]+\t|\[\d{4}-\d\d-\d\d [\d:.]+\]\[\d+\]\[[a-z]+\]")


def resolve_format(fmt: str) -> str:
    """A preset name or a format string -> the format string."""
    return PRESETS.get(fmt, fmt)


def compile_format(fmt: str, capture: frozenset[str] = frozenset(FIELD_NAMES)) -> Extractor:
    """An extractor of the EnvoyFields named in ``capture`` (text formats leave the others "")."""
    return _compiled(resolve_format(fmt), capture).extract


def compile_columns(fmt: str, capture: frozenset[str] = frozenset(FIELD_NAMES)) -> ColumnExtractor | None:
    """Many lines at a time (see ColumnExtractor); None for a text format that captures a field twice."""
    return _compiled(resolve_format(fmt), capture).columns


class _Compiled(NamedTuple):
    extract: Extractor
    columns: ColumnExtractor | None
    block: BlockExtractor | None = None


@lru_cache(maxsize=64)
def _compiled(fmt: str, capture: frozenset[str]) -> _Compiled:
    if fmt.lstrip().startswith("{"):
        return _compile_json(fmt, capture)
    return _compile_text(fmt, capture)


def _operator_pattern(field: str | None, following: str, inside_quotes: bool, lenient: bool) -> str:
    """One operator's regex. Envoy's "-" for an absent value is consumed before the group, which then
    captures "" (or, where a value's end is not fixed, does not take part: ``Match.groups("")``)."""
    numeric = field in NUMERIC_FIELDS
    digit_follows = following[:1].isdigit()
    if numeric and digit_follows:
        # Where the number ends is not fixed: "-" is tried as the absent mark (the group then does not
        # take part: Match.groups("") reads it as ""), else one to 18 digits.
        return "(?:-|([0-9]{1,18}))"
    if numeric:
        # ASCII digits only, and few enough to add up without overflow; at least one unless absent.
        body = "[0-9]{0,18}+"
    elif lenient and inside_quotes and following.startswith('"'):
        # A quote inside a quoted field is the field's own unless the format's next literal starts there.
        # The atomic group never gives back what it took: no backtracking, linear in the line.
        body = '(?>[^"]*(?:(?!' + re.escape(following) + ')"[^"]*)*)'
    elif following:
        body = "[^" + re.escape(following[0]) + "]*+"  # possessive: it cannot hold the next literal anyway
    else:
        body = ".*"
    if field is None:
        return body  # not captured: "-" is just text the body matches
    group = f"({body})"
    present = "(?=[0-9])" if numeric else ""
    # Where a value can end is fixed (at the next literal, which the body cannot hold, or the line's
    # end): one way to match a field, committed to at once. Otherwise "-" matches as both the absent
    # mark and the body, and a line that does not fit retries 2^(dash fields) splits, each rescanning
    # the rest of the line: a 64 KB line took 96 s to refuse.
    end = re.escape(following) if following else r"\Z"
    return f"(?>-(?={end})|{present}){group}"


def _text_regex(tokens: Sequence[str | Operator], lenient: bool, capture: frozenset[str]) -> re.Pattern[str]:
    """The line's regex: one group per captured field, in the format's order."""

    def _captured_field(operator: Operator) -> str | None:
        field = field_of(operator)
        return field if field in capture else None

    parts = []
    quotes = 0
    for index, token in enumerate(tokens):
        if isinstance(token, str):
            parts.append(re.escape(token))
            quotes += token.count('"')
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if isinstance(following, Operator):
            # Two operators with nothing between them: the first takes as little as it can.
            parts.append("(?:-|(.*?))" if _captured_field(token) is not None else "(?:.*?)")
            continue
        parts.append(_operator_pattern(_captured_field(token), following, quotes % 2 == 1, lenient))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _compile_text(fmt: str, capture: frozenset[str]) -> _Compiled:
    tokens = tokenize(fmt)
    fields = [field for token in tokens if isinstance(token, Operator) and (field := field_of(token)) in capture]
    if not fields:
        raise ValueError(f"format {fmt!r} has no command operator meshscope can use")
    strict = _text_regex(tokens, lenient=False, capture=capture)
    lenient = _text_regex(tokens, lenient=True, capture=capture)
    format_quotes = sum(token.count('"') for token in tokens if isinstance(token, str))

    # Each EnvoyFields slot is read from the group that captures it ("" when none does); a field
    # captured twice (two operators for one field) keeps the first non-empty capture.
    groups_of = [[index for index, field in enumerate(fields) if field == name] for name in FIELD_NAMES]
    slots = [" or ".join(f"g[{index}]" for index in groups) or "''" for groups in groups_of]
    slots = [f"({slot})" if " or " in slot else slot for slot in slots]
    source = (
        "def extract(line):\n"
        "    m = strict(line)\n"
        "    if m is None:\n"
        "        extra = line.count('\"') - format_quotes\n"
        "        if not 0 < extra <= max_extra or len(line) > max_lenient or (m := lenient(line)) is None:\n"
        "            return None\n"
        "    g = m.groups('')\n"
        f"    return new(EnvoyFields, ({', '.join(slots)},))\n"
    )
    namespace = {
        "strict": strict.match,
        "lenient": lenient.match,
        "format_quotes": format_quotes,
        "max_extra": _MAX_EXTRA_QUOTES,
        "max_lenient": _MAX_LENIENT_CHARS,
        "new": tuple.__new__,
        "EnvoyFields": EnvoyFields,
    }
    exec(compile(source, f"<envoy format {fmt[:40]!r}>", "exec"), namespace)
    columns = None if any(len(groups) > 1 for groups in groups_of) else _column_extractor(strict.match, groups_of)
    return _Compiled(namespace["extract"], columns)


def _column_extractor(match: Callable[[str], re.Match[str] | None], groups_of: list[list[int]]) -> ColumnExtractor:
    groups = re.Match.groups

    def by_field(matches: Sequence[re.Match[str]]) -> Columns:
        by_group = list(zip(*map(groups, matches, repeat("")), strict=True))
        empty = ("",) * len(matches)
        return [by_group[found[0]] if found else empty for found in groups_of]

    def columns(lines: Sequence[str]) -> list[Run]:
        return _runs(list(map(match, lines)), by_field)

    return columns


def _runs(found: list[_T | None], by_field: Callable[[Sequence[_T]], Columns]) -> list[Run]:
    """What each line gave (None: it does not fit) -> runs covering the lines in order, as columns."""
    if not found:
        return []
    if None not in found:
        return [(0, len(found), by_field(found))]  # type: ignore[arg-type]
    runs: list[Run] = []
    start = 0
    fits = found[0] is not None
    for index, item in enumerate(found):
        if (item is not None) != fits:
            runs.append((start, index, by_field(found[start:index]) if fits else None))  # type: ignore[arg-type]
            start, fits = index, not fits
    runs.append((start, len(found), by_field(found[start:]) if fits else None))  # type: ignore[arg-type]
    return runs


def _compile_json(fmt: str, capture: frozenset[str]) -> _Compiled:
    template = json_format_template(fmt)
    # Istio's own key names always work; the format's keys say where else each field may be.
    key_of = {name: name for name in FIELD_NAMES}
    for key, value in template.items():
        if isinstance(value, str):
            operators = [token for token in tokenize(value) if isinstance(token, Operator)]
            if len(operators) == 1 and (field := field_of(operators[0])) is not None:
                key_of[field] = key
    names = tuple(name for name in FIELD_NAMES if name in capture)
    entry = _JsonEntry(names, tuple(key_of[name] for name in names))
    return _Compiled(entry.extract, entry.columns, entry.block)


# What a JSON access-log value may be: text or null (absent), and for counters and gRPC statuses a number.
_TEXT = str | None
_TEXT_OR_NUMBER = str | int | None
_TEXT_OR_GRPC_STATUS = str | Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None
# What msgspec raises for a line it cannot read (ValidationError, a wrong kind of value, is a DecodeError);
# RecursionError: nested past Python's recursion limit; UnicodeEncodeError: a lone surrogate in the str.
_UNREADABLE = (msgspec.DecodeError, RecursionError, UnicodeEncodeError)
_ABSENT = {None: "", "-": ""}  # .get(value, value): Envoy's absent marks as ""
_JSON_SPACE = " \t\r"  # what may stand before a line's object (a line holds no newline)
# A "]" and then a "," outside the entries' own arrays would close a line's array and open another: the
# one way a line can give two entries in ``_JsonEntry.block``.
_ARRAY_BREAK = re.compile(rb"\][ \t\r\n]*,")
_BLOCK_PAUSE = 16  # blocks not tried after one is declined: a file that mixes in other lines goes by lines
_first = itemgetter(0)


def _is_object(line: str) -> bool:
    return line[:1] == "{" or line.lstrip(_JSON_SPACE)[:1] == "{"


def _is_utf8(body: bytes) -> bool:
    # msgspec checks UTF-8 only in the strings it builds, not in the values of keys it skips.
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _JsonEntry:
    """JSON lines of one format, decoded by msgspec into a struct of just the keys meshscope reads.

    The struct's types are the check: a value of another kind (an object, a boolean, a fraction, a
    number where an address goes) is the decoder's ValidationError, which names the key. Keys not
    declared are skipped without being built, which is most of what makes this faster than a dict.
    """

    def __init__(self, names: Sequence[str], keys: Sequence[str]) -> None:
        distinct = tuple(dict.fromkeys(keys))
        for key in distinct:
            if '"' in key or "\\" in key or not key.isprintable():
                raise ValueError(
                    f"key {key!r}: meshscope cannot read a key holding a quote, backslash or control character"
                )
        # A key read as two fields is a number only if both fields may be numbers.
        text = {key for name, key in zip(names, keys, strict=True) if name not in _NUMBER_FIELDS}
        grpc = {key for name, key in zip(names, keys, strict=True) if name == "grpc_status"}

        def kind(key: str) -> object:
            return _TEXT if key in text else _TEXT_OR_GRPC_STATUS if key in grpc else _TEXT_OR_NUMBER

        struct = msgspec.defstruct(
            "AccessLogEntry",
            [(f"v{i}", kind(key), "") for i, key in enumerate(distinct)],
            rename={f"v{i}": key for i, key in enumerate(distinct)},
            gc=False,
        )
        self._decode = msgspec.json.Decoder(struct).decode
        # A block read as one array of one-entry arrays, one per line: see ``block``.
        self._decode_block = msgspec.json.Decoder(list[tuple[struct]]).decode  # type: ignore[valid-type]
        slot_of = dict(zip(names, map(distinct.index, keys), strict=True))
        self._slots = [slot_of.get(name) for name in FIELD_NAMES]  # None: not captured, always ""
        empty = len(distinct)  # the "" appended after the values
        self._pick = itemgetter(*(empty if slot is None else slot for slot in self._slots))
        self._grpc_slot = slot_of.get("grpc_status")
        # Response flags keep null and "-": assemble_columns reads both as no flags, as it reads "".
        flags = slot_of.get("response_flags")
        self._flags_slot = flags if self._slots.count(flags) == 1 else None

    def extract(self, line: str) -> EnvoyFields | None:
        if not _is_object(line):
            return None
        try:
            values = _astuple(self._decode(line))
        except msgspec.ValidationError as error:  # before _UNREADABLE, which holds its base class
            raise ParseError("bad_field_type", str(error)) from None
        except _UNREADABLE as error:
            raise ParseError("bad_json", f"not valid JSON: {error}") from None
        fields = self._pick((*map(_ABSENT.get, values, values), ""))
        if type(fields[_GRPC_STATUS]) is int:  # %GRPC_STATUS_NUMBER%: 0 (OK) must not read as absent
            fields = (*fields[:_GRPC_STATUS], str(fields[_GRPC_STATUS]), *fields[_GRPC_STATUS + 1 :])
        return tuple.__new__(EnvoyFields, fields)

    def columns(self, lines: Sequence[str]) -> list[Run]:
        rows: list[tuple[object, ...] | None] | None = None
        if all(map(str.startswith, lines, repeat("{"))) or all(map(_is_object, lines)):
            try:
                rows = list(map(_astuple, map(self._decode, lines)))
            except _UNREADABLE:
                pass  # which lines fit is then asked line by line
        if rows is None:
            rows = list(map(self._row_or_none, lines))
        return _runs(rows, self._by_field)

    def block(self, body: bytes) -> Columns | None:
        # Each line becomes an array of one entry ("\n" -> "],[") and the block one array of those: the
        # decoder then refuses a line holding anything but one object of the struct's types. A line could
        # still give two entries through a "]," of its own, which is looked for; with that ruled out, as
        # many arrays as lines means no object ran over a line's end (two lines would have made one).
        # Splitting into lines is not needed, which is what makes a block cheaper than its lines.
        if not (body.isascii() or _is_utf8(body)):
            return None
        if b"]" in body and _ARRAY_BREAK.search(body):
            return None
        arrays = body.replace(b"\n", b"],[")
        try:
            entries = self._decode_block(b"".join((b"[[", arrays, b"]]")))
        except _UNREADABLE:
            return None
        if len(entries) != (len(arrays) - len(body)) // 2 + 1:
            return None
        return self._by_field(list(map(_astuple, map(_first, entries))))

    def _row_or_none(self, line: str) -> tuple[object, ...] | None:
        try:
            return _astuple(self._decode(line)) if _is_object(line) else None
        except _UNREADABLE:  # the line goes alone through extract, which says why
            return None

    def _by_field(self, rows: Sequence[tuple[object, ...]]) -> Columns:
        by_key: list[Sequence[object]] = list(zip(*rows, strict=True))
        count = len(rows)
        empty = ("",) * count
        flags = self._flags_slot
        for index, column in enumerate(by_key):
            if index == flags:
                continue
            first = column[0]
            if first is column[-1] and column.count(first) == count:
                # One object throughout (a key no line has, or always null): list.count compares by
                # identity before equality, so this is cheap exactly when it is true.
                if first is None or first == "-":
                    by_key[index] = empty
            elif (not all(column) and None in column) or "-" in column:
                # all() only asks each value's truth: much cheaper than comparing each with None.
                by_key[index] = list(map(_ABSENT.get, column, column))
        grpc = self._grpc_slot
        if grpc is not None and int in set(map(type, by_key[grpc])):
            by_key[grpc] = [str(value) for value in by_key[grpc]]  # 0 (OK) must not read as absent
        return [empty if slot is None else by_key[slot] for slot in self._slots]  # type: ignore[misc]


class LineParser:
    """Parses lines of one proxy's access log into Records."""

    def __init__(self, fmt: str, reporter: Workload, peers: PeerTable, keep_original: bool = False) -> None:
        self.reporter = reporter
        self.keep_original = keep_original  # each Record carries its line (for a log sink's event.original)
        assembler = RecordAssembler(peers)
        self._assemble = assembler.assemble
        self._assemble_columns = assembler.assemble_columns
        self._auto = fmt == "auto"
        names = DETECTION_ORDER if self._auto else (fmt,)
        self._candidates = [(name, _compiled(resolve_format(name), ASSEMBLED_FIELDS)) for name in names]
        self.format_name, (self._extract, self._columns, self._block) = self._candidates[0]
        self._bug_logged = False
        self._block_pause = 0  # blocks left to go by lines before one is tried whole again

    def parse(self, line: str) -> Record:
        if line.endswith("\n"):
            line = line.rstrip("\r\n")
        fields = self._extract(line)
        if fields is None:
            fields = self._detect(line)
        return self._assemble(fields, self.reporter, line if self.keep_original else "")

    def parse_block(self, body: bytes) -> list[Record] | None:
        """The Records of a block of lines (UTF-8 bytes, newline-separated, without the last newline), read
        whole, when every line is an entry of the current format and the format reads blocks (JSON): the
        same Records ``parse_lines`` gives, without splitting the block. Otherwise None, and nothing is
        counted: ``parse_lines`` of the block's lines then says what each line is. The caller has made
        sure that no line is over its length limit."""
        if self._block is None or self.keep_original or not body:
            return None
        if self._block_pause:
            self._block_pause -= 1
            return None
        records = None
        try:
            columns = self._block(body)
            if columns is not None:
                records = self._assemble_columns(columns, self.reporter)
        except Exception:
            self._column_bug()
        if records is None:
            self._block_pause = _BLOCK_PAUSE  # what was decoded is thrown away: not again for a while
        return records

    def parse_lines(self, lines: Sequence[str], errors: list[tuple[str, str]]) -> list[Record]:
        """Parse many lines (without newlines); each failure is appended to ``errors`` as (reason, line).

        Records and errors come in the order of the lines, as parsing each alone would give them. Runs of
        lines that fit the current format go through as columns (``assemble_columns``); a line that does
        not, and a run the column path declines, go one at a time.
        """
        records: list[Record] = []
        for _ in range(_MAX_RESTARTS):
            done = self._parse_runs(lines, errors, records)
            lines = lines[done:]
            if not lines:
                return records
        # Formats keep switching (two loggers writing to one stream?): each restart would read all the
        # lines left again, so the rest go one at a time, which stays linear.
        records += self._parse_each(lines, errors)
        return records

    def _parse_runs(self, lines: Sequence[str], errors: list[tuple[str, str]], records: list[Record]) -> int:
        """Parse ``lines`` in order into ``records``; how many were done (fewer than all when a line
        changed the detected format: the lines after it are looked at afresh)."""
        columns_of = self._columns
        runs = None
        if columns_of is not None:
            try:
                runs = columns_of(lines)
            except Exception:
                self._column_bug()
        if runs is None:
            records += self._parse_each(lines, errors)
            return len(lines)
        for start, end, columns in runs:
            if columns is not None:
                records += self._assemble_run(columns, lines[start:end], errors)
                continue
            for index in range(start, end):
                records += self._parse_each((lines[index],), errors)
                if self._columns is not columns_of:
                    return index + 1
        return len(lines)

    def _assemble_run(self, columns: Columns, lines: Sequence[str], errors: list[tuple[str, str]]) -> list[Record]:
        records = None
        try:
            records = self._assemble_columns(columns, self.reporter, lines if self.keep_original else None)
        except Exception:
            self._column_bug()
        if records is None:
            records = self._assemble_each(map(_new_fields, zip(*columns, strict=True)), lines, errors)
        return records

    def _column_bug(self) -> None:
        # The line-by-line path then judges each line (and counts a bug there per line).
        if not self._bug_logged:
            self._bug_logged = True
            log.exception("parsing by columns failed; these lines go one at a time")

    def _assemble_each(
        self, rows: Iterable[EnvoyFields], lines: Sequence[str], errors: list[tuple[str, str]]
    ) -> list[Record]:
        records: list[Record] = []
        assemble = self._assemble
        reporter = self.reporter
        keep_original = self.keep_original
        for fields, line in zip(rows, lines, strict=True):
            try:
                records.append(assemble(fields, reporter, line) if keep_original else assemble(fields, reporter))
            except ParseError as error:
                errors.append((error.reason, line))
            except Exception:
                self._parser_bug(line, errors)
        return records

    def _parse_each(self, lines: Sequence[str], errors: list[tuple[str, str]]) -> list[Record]:
        records: list[Record] = []
        append = records.append
        assemble = self._assemble
        reporter = self.reporter
        keep_original = self.keep_original
        for line in lines:
            try:
                fields = self._extract(line)
                if fields is None:
                    fields = self._detect(line)
                append(assemble(fields, reporter, line) if keep_original else assemble(fields, reporter))
            except ParseError as error:
                errors.append((error.reason, line))
            except Exception:
                self._parser_bug(line, errors)
        return records

    def _parser_bug(self, line: str, errors: list[tuple[str, str]]) -> None:
        # A parser bug must cost one line, not the batch: counted, and the first one logged.
        if not self._bug_logged:
            self._bug_logged = True
            log.exception("the access-log parser failed on a line; counted as parser_error")
        errors.append(("parser_error", line))

    def _detect(self, line: str) -> EnvoyFields:
        error: ParseError | None = None
        if self._auto:
            for name, compiled in self._candidates:
                if compiled.extract is self._extract:
                    continue
                try:
                    fields = compiled.extract(line)
                except ParseError as exc:
                    error = exc
                    continue
                if fields is not None:
                    # Formats do not change line to line; keep the one that fits at the front.
                    self.format_name, (self._extract, self._columns, self._block) = name, compiled
                    return fields
        if not line.strip():
            raise ParseError("empty_line")
        if _PROXY_OWN_LOG.match(line):
            # The istio-proxy container also logs Envoy's and pilot-agent's own messages.
            raise ParseError("not_access_log", "a proxy's own log message, not an access-log entry")
        if error is not None:
            raise error
        raise ParseError("format_mismatch", f"line does not fit the {self.format_name} format")


def _new_fields(values: tuple[str, ...]) -> EnvoyFields:
    return tuple.__new__(EnvoyFields, values)


def make_parser(fmt: str, reporter: Workload, peers: PeerTable, keep_original: bool = False) -> LineParser:
    """``fmt``: "auto", a preset name (see telemetry.envoy.presets) or an Envoy format string."""
    return LineParser(fmt, reporter, peers, keep_original)
