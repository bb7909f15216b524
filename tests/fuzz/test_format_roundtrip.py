"""The format compiler's round trip: fields rendered with any Envoy format string parse back to themselves.

``compile_renderer`` writes a line as Envoy would for a format string; ``compile_format`` reads it back.
For generated formats (text and JSON, presets included) and generated values, the parser must return
exactly the rendered fields, and the Record parsed from the line must be the Record assembled from the
fields directly (the same ParseError when the fields themselves are unusable).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from hypothesis import assume, given
from hypothesis import strategies as st

from telemetry.envoy.errors import ParseError
from telemetry.envoy.istio import ASSEMBLED_FIELDS, RecordAssembler
from telemetry.envoy.operators import (
    FIELD_NAMES,
    NUMERIC_FIELDS,
    EnvoyFields,
    Operator,
    field_of,
    tokenize,
)
from telemetry.envoy.parser import compile_format, make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.envoy.presets import PRESETS
from telemetry.envoy.render import compile_renderer
from telemetry.model import Workload

REPORTER = Workload(name="reviews-v2", namespace="default", app="reviews", version="v2")

# Every operator meshscope maps, except the one that prints a transformation of its field.
_PLAIN = [
    "START_TIME", "PROTOCOL", "RESPONSE_CODE", "RESPONSE_FLAGS", "RESPONSE_CODE_DETAILS",
    "CONNECTION_TERMINATION_DETAILS", "UPSTREAM_TRANSPORT_FAILURE_REASON", "BYTES_RECEIVED", "BYTES_SENT",
    "DURATION", "UPSTREAM_HOST", "UPSTREAM_CLUSTER", "UPSTREAM_CLUSTER_RAW", "UPSTREAM_LOCAL_ADDRESS",
    "DOWNSTREAM_LOCAL_ADDRESS", "DOWNSTREAM_REMOTE_ADDRESS", "REQUESTED_SERVER_NAME", "ROUTE_NAME",
    "GRPC_STATUS", "GRPC_STATUS_NUMBER", "TRACE_ID", "DOWNSTREAM_PEER_URI_SAN", "UPSTREAM_PEER_URI_SAN",
]  # fmt: skip
_HEADERS = [
    ("REQ", ":METHOD"), ("REQ", ":PATH"), ("REQ", "X-ENVOY-ORIGINAL-PATH?:PATH"), ("REQ", ":AUTHORITY"),
    ("REQ", "HOST"), ("REQ", "USER-AGENT"), ("REQ", "X-REQUEST-ID"), ("REQ", "X-FORWARDED-FOR"),
    ("REQ", "X-B3-TRACEID"), ("REQ", "X-B3-SPANID"), ("REQ", "TRACEPARENT"), ("RESP", "GRPC-STATUS"),
    ("RESP", "X-ENVOY-UPSTREAM-SERVICE-TIME"), ("TRAILER", "GRPC-STATUS"),
]  # fmt: skip
OPERATORS = [Operator(name) for name in _PLAIN] + [Operator(name, argument) for name, argument in _HEADERS]
# Operators meshscope matches but does not use: always rendered "-".
UNMAPPED = [Operator("HOSTNAME"), Operator("DYNAMIC_METADATA", "istio.mixer:status"), Operator("CONNECTION_ID")]
_TYPED_OPERATORS = frozenset({"RESPONSE_CODE", "BYTES_RECEIVED", "BYTES_SENT", "DURATION"})
# Numbers Envoy's typed JSON prints as JSON numbers: within the counters' range.
_MAX_COUNTER = 2**53 - 1


@dataclass(frozen=True)
class Case:
    fmt: str
    values: dict[str, str]  # EnvoyFields name -> the value rendered (before any :MAXLEN)


def _text_tokens(fmt: str) -> list[str | Operator]:
    return tokenize(PRESETS.get(fmt, fmt))


def _excluded(tokens: list[str | Operator]) -> dict[str, set[str]]:
    """Per field, the characters its value may not hold: the first of the literal right after it
    (a text field extends to that character; a format cannot tell the two apart)."""
    excluded: dict[str, set[str]] = {}
    for index, token in enumerate(tokens):
        if isinstance(token, Operator) and (field := field_of(token)) is not None:
            following = tokens[index + 1] if index + 1 < len(tokens) else ""
            chars = excluded.setdefault(field, set())
            if isinstance(following, str) and following:
                chars.add(following[0])
    return excluded


def _value(field: str, excluded: set[str]) -> st.SearchStrategy[str]:
    if field in NUMERIC_FIELDS:
        return st.integers(0, _MAX_COUNTER).map(str)
    # Access logs are read line by line: no value holds a line break.
    alphabet = st.characters(blacklist_categories=("Cs",), blacklist_characters="".join(sorted(excluded)) + "\r\n")
    return st.text(alphabet, min_size=1, max_size=24).filter(lambda text: not text.startswith("-"))


@st.composite
def _literal(draw: st.DrawFn) -> str:
    text = draw(st.text(st.sampled_from(' []|,;=:"/<>(){}#@xZ\t'), min_size=1, max_size=3))
    return "%%" + text if draw(st.booleans()) and draw(st.integers(0, 4)) == 0 else text


@st.composite
def text_formats(draw: st.DrawFn) -> str:
    """A text format: operators (each field once, some unmapped, some with :MAXLEN) between literals."""
    operators = draw(st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=8, unique_by=field_of))
    operators += draw(st.lists(st.sampled_from(UNMAPPED), max_size=2))
    operators = draw(st.permutations(operators))
    parts = [draw(_literal()) if draw(st.booleans()) else ""]
    for index, operator in enumerate(operators):
        length = draw(st.one_of(st.none(), st.integers(1, 12))) if draw(st.integers(0, 3)) == 0 else None
        parts.append(str(Operator(operator.name, operator.argument, length)))
        # Two operators with nothing between them cannot be told apart: always a literal between.
        if index + 1 < len(operators) or draw(st.booleans()):
            parts.append(draw(_literal()))
    # A format string starting with "{" is a JSON format (Envoy's json_format): not what is drawn here.
    fmt = "".join(parts)
    return "x" + fmt if fmt.lstrip().startswith("{") else fmt


TEXT_PRESETS = ["istio", "istio-upstream-cluster", "istio-mixer", "envoy"]


@st.composite
def text_cases(draw: st.DrawFn, formats: st.SearchStrategy[str] | None = None) -> Case:
    fmt = draw(formats if formats is not None else st.one_of(st.sampled_from(TEXT_PRESETS), text_formats()))
    tokens = _text_tokens(fmt)
    values = {field: draw(_value(field, chars)) for field, chars in _excluded(tokens).items()}
    return Case(fmt, values)


@st.composite
def json_cases(draw: st.DrawFn) -> Case:
    """A JSON format (Istio's, or keys of its own, flat or with constants and nested objects)."""
    if draw(st.booleans()):
        fmt = "json"
    else:
        operators = draw(st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=8, unique_by=field_of))
        template: dict[str, object] = {}
        for operator in operators:
            field = field_of(operator)
            assert field is not None
            # A key is the field's own Istio name or one outside that vocabulary.
            key = field if draw(st.booleans()) else "k_" + draw(st.text("abcxyz_", min_size=1, max_size=6))
            if key in template:
                continue
            length = draw(st.integers(1, 12)) if draw(st.integers(0, 4)) == 0 else None
            template[key] = str(Operator(operator.name, operator.argument, length))
        if draw(st.booleans()):
            template["constant_"] = draw(st.sampled_from(["v1", 7, None, True, ["a", {"b": 1}]]))
        if draw(st.booleans()):
            template["nested_"] = {"n": "%DURATION% ms", "m": "%HOSTNAME%"}
        fmt = orjson.dumps(template).decode()
    fields = {
        field_of(operator)
        for value in orjson.loads(PRESETS.get(fmt, fmt)).values()
        if isinstance(value, str)
        for operator in tokenize(value)
        if isinstance(operator, Operator) and len(tokenize(value)) == 1
    }
    # Sorted: the draws (so the examples) must not depend on the process's string hash seed.
    values = {field: draw(_value(field, set())) for field in sorted(field for field in fields if field is not None)}
    return Case(fmt, values)


def _expected(case: Case, line_values: dict[str, object]) -> EnvoyFields:
    return EnvoyFields(**{name: line_values.get(name, "") for name in FIELD_NAMES})


def _truncated(case: Case) -> dict[str, str]:
    """The values as the line carries them: each operator's :MAXLEN applied."""
    fmt = PRESETS.get(case.fmt, case.fmt)
    if fmt.startswith("{"):
        operators = [
            token
            for value in orjson.loads(fmt).values()
            if isinstance(value, str) and len(tokens := tokenize(value)) == 1
            for token in tokens
        ]
    else:
        operators = [token for token in tokenize(fmt) if isinstance(token, Operator)]
    out = dict(case.values)
    for operator in operators:
        if not isinstance(operator, Operator):
            continue
        field = field_of(operator)
        # As Envoy does, :MAXLEN truncates text; a JSON format prints its typed operators as whole numbers.
        typed = fmt.startswith("{") and operator.name in _TYPED_OPERATORS
        if field is not None and operator.max_length and not typed:
            out[field] = case.values[field][: operator.max_length]
    return out


@given(text_cases())
def test_text_format_parses_back_the_fields_it_rendered(case: Case) -> None:
    line = compile_renderer(case.fmt)(case.values)
    fields = compile_format(case.fmt)(line)
    assert fields == _expected(case, _truncated(case)), line


@given(json_cases())
def test_json_format_parses_back_the_fields_it_rendered(case: Case) -> None:
    line = compile_renderer(case.fmt)(case.values)
    fields = compile_format(case.fmt)(line)
    assert fields is not None, line
    # Typed operators come back as JSON numbers: compare as text.
    assert EnvoyFields(*map(str, fields)) == _expected(case, _truncated(case)), line


def _assembled(fields: dict[str, str]) -> object:
    try:
        return RecordAssembler(PeerTable()).assemble(EnvoyFields(**fields), REPORTER)
    except ParseError as error:
        return error.reason


def _parsed(fmt: str, line: str) -> object:
    try:
        return make_parser(fmt, REPORTER, PeerTable()).parse(line)
    except ParseError as error:
        return error.reason


@given(st.one_of(text_cases(), json_cases()))
def test_record_from_a_rendered_line_is_the_record_of_its_fields(case: Case) -> None:
    # A LineParser needs one operator a Record is made from (a format of only, say, response details has none).
    assume(ASSEMBLED_FIELDS & case.values.keys())
    line = compile_renderer(case.fmt)(case.values)
    assume(line.strip())
    assert _parsed(case.fmt, line) == _assembled(_truncated(case))


@given(st.sampled_from(sorted(PRESETS)), st.data())
def test_auto_detection_reads_every_preset_as_its_own_format_would(fmt: str, data: st.DataObject) -> None:
    # "auto" may settle on another preset that also fits the line, but never reads it differently.
    case = data.draw(json_cases() if fmt == "json" else text_cases(st.just(fmt)))
    line = compile_renderer(case.fmt)(case.values)
    assert _parsed("auto", line) == _parsed(fmt, line)
