"""The logging half of the full profile: Fluentd's config read section by section, its image, the Kibana
data view, and the one-shot setup script run for real (curl) against stand-ins for Elasticsearch and Kibana."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from telemetry.exporters.elasticsearch.config import ElasticsearchConfig
from telemetry.exporters.elasticsearch.templates import ILM_POLICY_FILE, INDEX_TEMPLATE_FILE, ilm_policy
from telemetry.exporters.fluentforward.config import FluentForwardConfig
from tests.compose import fluentconf
from tests.compose.stack import COMPOSE, raw_compose, resolved_compose
from tests.telemetry.exporters.elasticsearch.fake_es import FakeElasticsearch
from tests.telemetry.exporters.elasticsearch.mapping_check import leaf_types

from conftest import require_program
from realparts import free_port, start_serving, stop_serving

FLUENT_CONF = COMPOSE / "fluentd" / "fluent.conf"
DATA_VIEW = COMPOSE / "kibana" / "data_view.json"
SETUP_SCRIPT = COMPOSE / "kibana" / "setup.sh"
DATA_STREAM = ElasticsearchConfig().data_stream


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (bind mounts) or volume name."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        found[target] = source
    return found


def fluentd_pattern_matches(pattern: str, tag: str) -> bool:
    """Fluentd's match patterns: ``*`` one tag part, ``**`` zero or more parts."""
    regex = re.escape(pattern).replace(r"\.\*\*", r"(\..+)?").replace(r"\*\*", ".*").replace(r"\*", r"[^.]+")
    return re.fullmatch(regex, tag) is not None


@pytest.fixture(scope="module")
def conf() -> fluentconf.Directive:
    return fluentconf.parse(FLUENT_CONF.read_text())


def test_fluentd_receives_forward_on_the_port_the_collector_sends_to(conf: fluentconf.Directive) -> None:
    (source,) = conf.all("source")
    assert source.params["@type"] == "forward"
    assert source.params["bind"] == "0.0.0.0"
    collector = yaml.safe_load((COMPOSE / "meshscope" / "meshscope.yaml").read_text())["exporters"]["fluentforward"]
    assert collector["endpoint"] == f"fluentd:{source.params['port']}"
    # Off in the file (the core profile has no Fluentd); one variable turns it on for the full profile.
    environment = raw_compose()["services"]["meshscope"]["environment"]
    assert environment["MESHSCOPE_EXPORTERS__FLUENTFORWARD__ENABLED"] == "${MESHSCOPE_LOG_EXPORT:-false}"


def test_the_collectors_access_log_tags_reach_the_elasticsearch_output(conf: fluentconf.Directive) -> None:
    first = conf.all("match")[0]
    assert first.params["@type"] == "elasticsearch"
    tag = FluentForwardConfig().tag.replace("{namespace}", "bookinfo")
    assert fluentd_pattern_matches(first.argument, tag)
    assert not fluentd_pattern_matches(first.argument, "envoy.access.x")
    # The catch-all comes last: Fluentd takes the first match.
    assert conf.all("match")[-1].argument == "**"


def test_fluentd_writes_the_data_stream_with_the_shipped_template_mounted(conf: fluentconf.Directive) -> None:
    out = conf.all("match")[0].params
    assert out["index_name"] == DATA_STREAM
    assert out["write_operation"] == "create"  # a data stream takes nothing else
    assert out["use_legacy_template"] == "false" and out["template_name"] == DATA_STREAM
    assert out["include_timestamp"] == "false" and out["logstash_format"] == "false"
    fluentd = resolved_compose("full")["services"]["fluentd"]
    assert Path(mounts(fluentd)[out["template_file"]]).resolve() == INDEX_TEMPLATE_FILE.resolve()
    assert json.loads(INDEX_TEMPLATE_FILE.read_text())["index_patterns"] == [DATA_STREAM]


def test_fluentd_buffers_on_a_named_volume_and_retries_until_elasticsearch_is_back(
    conf: fluentconf.Directive,
) -> None:
    fluentd_mounts = mounts(raw_compose()["services"]["fluentd"])
    state = next(target for target, source in fluentd_mounts.items() if source == "fluentd-state")
    buffers = [conf.all("match")[0].one("buffer"), conf.one("label").one("match").one("buffer")]
    for buffer in buffers:
        assert buffer.params["@type"] == "file"
        assert buffer.params["path"].startswith(f"{state}/")
    assert buffers[0].params["retry_forever"] == "true"
    assert conf.one("label").argument == "@ERROR"


def test_the_fluent_conf_reader_refuses_what_fluentd_would(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="never closed"):
        fluentconf.parse("<source>\n  @type forward\n")
    with pytest.raises(ValueError, match="closes nothing"):
        fluentconf.parse("<match **>\n</source>\n")
    with pytest.raises(ValueError, match="outside any section"):
        fluentconf.parse("port 24224\n")


def test_the_fluentd_image_pins_the_plugin_and_a_client_of_elasticsearchs_version() -> None:
    dockerfile = (COMPOSE / "fluentd" / "Dockerfile").read_text()
    assert re.search(r"gem install .*fluent-plugin-elasticsearch -v \d+\.\d+\.\d+", dockerfile)
    client = re.search(r"gem install .*elasticsearch -v (\d+\.\d+)\.\d+", dockerfile)
    server = resolved_compose("full")["services"]["elasticsearch"]["image"].rsplit(":", 1)[1]
    assert client and server.startswith(f"{client[1]}.")


def test_the_kibana_data_view_covers_the_stream_and_links_trace_ids_to_jaeger() -> None:
    body = json.loads(DATA_VIEW.read_text())
    view = body["data_view"]
    assert view["title"] == DATA_STREAM and view["timeFieldName"] == "@timestamp"
    fields = leaf_types(json.loads(INDEX_TEMPLATE_FILE.read_text())["template"]["mappings"])
    assert fields["@timestamp"] == "date"
    assert set(view["fieldFormats"]) <= set(fields)
    link = view["fieldFormats"]["trace.id"]
    assert link["id"] == "url" and link["params"]["type"] == "a"
    assert link["params"]["urlTemplate"] == "http://localhost:16686/trace/{{value}}"
    assert "16686:16686" in raw_compose()["services"]["jaeger"]["ports"]
    assert view["fieldFormats"]["event.duration"]["params"]["inputFormat"] == "nanoseconds"


class FakeKibana:
    """Answers /api/status as an available Kibana and records data views posted to it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.posted: list[tuple[dict[str, str], Any]] = []
        posted = self.posted

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body, separators=(",", ":")).encode()  # compact, as Kibana answers
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
                self._answer(200, {"status": {"overall": {"level": "available", "summary": "ready"}}})

            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/api/data_views/data_view" or "kbn-xsrf" not in self.headers:
                    self._answer(400, {"message": "bad request"})
                    return
                posted.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self._answer(200, {"data_view": body["data_view"]})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = start_serving(Handler, self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def stand_ins() -> Iterator[tuple[FakeElasticsearch, FakeKibana]]:
    elasticsearch = FakeElasticsearch().start()
    kibana = FakeKibana()
    yield elasticsearch, kibana
    elasticsearch.stop()
    stop_serving(kibana.server)


def run_setup(elasticsearch: FakeElasticsearch, kibana: FakeKibana, tmp_path: Path) -> subprocess.CompletedProcess:
    """setup.sh as the logs-setup service runs it, with its mounts copied into a folder."""
    service = resolved_compose("full")["services"]["logs-setup"]
    files = tmp_path / "setup"
    files.mkdir(exist_ok=True)
    for target, source in mounts(service).items():
        shutil.copy(source, files / Path(target).name)
    env = {
        "PATH": "/usr/bin:/bin",
        "ELASTICSEARCH_URL": elasticsearch.url,
        "KIBANA_URL": kibana.url,
        "SETUP_FILES": str(files),
        "KIBANA_WAIT_SECONDS": "0",
    }
    entrypoint = [part.replace("/setup/", f"{files}/") for part in service["entrypoint"]]
    return subprocess.run(entrypoint, env=env, capture_output=True, text=True, timeout=60)


def test_the_setup_service_installs_the_shipped_files_and_the_data_view(
    stand_ins: tuple[FakeElasticsearch, FakeKibana], tmp_path: Path
) -> None:
    require_program("curl", "curl")
    elasticsearch, kibana = stand_ins
    result = run_setup(elasticsearch, kibana, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert elasticsearch.policies[DATA_STREAM] == json.loads(ILM_POLICY_FILE.read_text()) == ilm_policy()
    assert elasticsearch.templates[DATA_STREAM] == json.loads(INDEX_TEMPLATE_FILE.read_text())
    ((headers, body),) = kibana.posted
    assert body == json.loads(DATA_VIEW.read_text())
    assert headers["content-type"] == "application/json"


def test_the_setup_service_leaves_an_existing_ilm_policy_alone(
    stand_ins: tuple[FakeElasticsearch, FakeKibana], tmp_path: Path
) -> None:
    require_program("curl", "curl")
    elasticsearch, kibana = stand_ins
    tuned = {"policy": {"phases": {"delete": {"min_age": "30d", "actions": {"delete": {}}}}}}
    elasticsearch.policies[DATA_STREAM] = tuned
    result = run_setup(elasticsearch, kibana, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert elasticsearch.policies[DATA_STREAM] == tuned
    assert ("PUT", f"/_ilm/policy/{DATA_STREAM}") not in elasticsearch.calls()


def test_the_setup_service_fails_loudly_when_elasticsearch_refuses(
    stand_ins: tuple[FakeElasticsearch, FakeKibana], tmp_path: Path
) -> None:
    require_program("curl", "curl")
    elasticsearch, kibana = stand_ins
    elasticsearch.stop()
    result = run_setup(elasticsearch, kibana, tmp_path)
    assert result.returncode != 0 and kibana.posted == []
