"""The direct Elasticsearch log sink: Records queue here and one sender thread bulk-indexes them.

``consume`` only appends the Records to a bounded deque (the pipeline's worker never waits for
Elasticsearch); the sender takes up to ``batch_size``, turns them into the ECS documents of
``log_event`` (the same documents the Fluentd sink sends) and delivers them with ``bulk.send``,
retrying what Elasticsearch refused for now with the collector's backoff. While Elasticsearch is away
the batch in hand waits and new Records queue behind it, in order; beyond ``queue_size`` the oldest are
dropped and counted, since after an outage the newest logs are the ones worth having.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch, UnsupportedProductError
from elasticsearch.serializer import OrjsonSerializer

from telemetry.exporters.elasticsearch import bulk, templates
from telemetry.exporters.elasticsearch.config import ElasticsearchConfig
from telemetry.exporters.export_queue import backoff_delay
from telemetry.exporters.log_event import Event, batch_events
from telemetry.exporters.sender import SenderState
from telemetry.model import Record
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

NAME = "elasticsearch"
STAGE = f"exporter:{NAME}"
NO_STREAM = "no_data_stream"  # documents refused: the data stream does not exist and no template creates it


def build_client(config: ElasticsearchConfig) -> Elasticsearch:
    # The node pool warns on every failed request ("has failed for 70 times in a row"); the sink reports
    # an unreachable Elasticsearch itself, once, in reachability and export_failures_total.
    logging.getLogger("elastic_transport.node_pool").setLevel(logging.ERROR)
    options: dict[str, object] = {}
    if config.api_key:
        options["api_key"] = config.api_key
    elif config.username:
        options["basic_auth"] = (config.username, config.password)
    if config.ca_certs:
        options["ca_certs"] = config.ca_certs
    return Elasticsearch(
        config.hosts,
        verify_certs=config.verify_certs,
        request_timeout=config.request_timeout,
        # The sink retries, with backoff and a shutdown that can interrupt it; the client must not also.
        max_retries=0,
        retry_on_timeout=False,
        serializer=OrjsonSerializer(),
        **options,  # type: ignore[arg-type]
    )


class ElasticsearchSink:
    def __init__(self, config: ElasticsearchConfig, stats: SelfStats, client: Elasticsearch | None = None) -> None:
        self._config = config
        self._stats = stats
        self._client = client if client is not None else build_client(config)
        self._target = ", ".join(config.hosts)  # named in the UI's banner when it does not answer
        self._queue: deque[Record] = deque()
        self._in_flight = 0  # Records of the batch being delivered (still within the bound)
        self._state = SenderState()
        self._cond = self._state.cond
        # Installed again after every connection failure: the cluster that answers next may be a new one.
        self._templates_pending = config.install_template
        self._max_bytes = bulk.MAX_REQUEST_BYTES  # halved after a request refused with 413
        stats.watch_queue(STAGE, self.depth)
        self._sender = threading.Thread(target=self._run, name="meshscope-export-elasticsearch", daemon=True)
        self._sender.start()

    def depth(self) -> int:
        return len(self._queue) + self._in_flight

    def consume(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        with self._cond:
            if self._state.closed:
                self._stats.drop(STAGE, "shutdown", len(batch))
                return
            queue = self._queue
            queue.extend(batch)
            overflow = len(queue) + self._in_flight - self._config.queue_size
            if overflow > 0:
                for _ in range(min(overflow, len(queue))):
                    queue.popleft()
                self._stats.drop(STAGE, "queue_full", overflow)
            self._cond.notify_all()

    def hold_back(self, count: int, timeout: float) -> bool:
        """For file tailing (``pipeline.HoldsBack``): until ``count`` more Records fit in the queue, while
        Elasticsearch answers; True at once when it is away (the oldest are dropped, counted, as before: an
        outage must not stop tailing) or the sender has stopped or shut down."""
        if self._config.when_full != "wait" or not self._stats.reached(NAME) or not self._sender.is_alive():
            return True
        return self._state.wait_for_room(self.depth, count, self._config.queue_size, timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued Record has been delivered, refused or given up; False on timeout."""
        return self._state.wait_until_idle(lambda: self.depth() > 0, self._sender, timeout)

    def shutdown(self) -> None:
        """Refuse new Records, deliver the queue within ``shutdown_timeout``, then stop. Idempotent."""
        if not self._state.begin_shutdown(self.flush, self._config.shutdown_timeout):
            return
        # A request in progress ends within request_timeout; the sender counts its batch when it returns.
        self._sender.join(self._config.request_timeout + 1.0)
        with self._cond:
            self._discard_queue()
        self._client.close()

    def _discard_queue(self) -> None:
        if self._queue:
            self._stats.drop(STAGE, "shutdown", len(self._queue))
            self._queue.clear()
            self._cond.notify_all()

    def _take(self) -> list[Record] | None:
        """Wait for Records and return up to ``batch_size``; None when it is time to stop."""
        batch_size = self._config.batch_size
        with self._cond:
            if not self._state.wait_for_batch(lambda: len(self._queue), batch_size, self._config.batch_timeout):
                return None
            queue = self._queue
            batch = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
            self._in_flight = len(batch)
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._deliver(batch_events(batch, self._config.include_original))
            except Exception:
                # A bug: retrying would only fail the same way; the sender must live on for the next batch.
                log.exception("exporter %s: unexpected error; giving up %d events", NAME, len(batch))
                self._stats.export_failure(NAME, "internal_error")
                self._stats.drop(STAGE, "internal_error", len(batch))
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
        with self._cond:
            self._discard_queue()

    def _deliver(self, events: list[Event]) -> None:
        retry = self._config.retry
        started = time.monotonic()
        attempt = 0
        installed = False  # the templates were put during this delivery
        while True:
            if self._templates_pending:
                failure = self._install_templates()
                installed = installed or failure is None
            else:
                outcome = bulk.send(self._client, self._config.data_stream, events, self._max_bytes)
                self._max_bytes = outcome.max_bytes  # a proxy's limit found by a 413 holds for later batches
                events = outcome.retry
                failure = outcome.failure
                if outcome.no_stream:
                    if self._config.install_template and not installed:
                        # The template is gone (deleted, or this is a new cluster): put it and send again.
                        self._templates_pending = True
                        events = outcome.no_stream + events
                        failure = failure or NO_STREAM
                    else:
                        # Written anyway, they would land in a plain index with guessed mappings.
                        log.warning(
                            "exporter %s: %s is not a data stream and no index template makes it one; "
                            "dropping %d events (install the template, or set install_template: true)",
                            NAME,
                            self._config.data_stream,
                            len(outcome.no_stream),
                        )
                        outcome.reject(NO_STREAM, len(outcome.no_stream))
                self._count(outcome, failure if events else "")
                if not events:
                    return
                if outcome.unreachable is not None:
                    self._templates_pending = self._config.install_template
                if self._templates_pending and failure == NO_STREAM:
                    continue  # the templates first, at once
            if failure is None:
                continue  # templates in place: now the documents, at once
            delay = backoff_delay(attempt, retry)
            attempt += 1
            if retry.max_elapsed and time.monotonic() - started + delay > retry.max_elapsed:
                log.warning(
                    "exporter %s: %s for %.0fs; giving up %d events", NAME, failure, retry.max_elapsed, len(events)
                )
                self._stats.export_failure(NAME, "gave_up")
                self._stats.drop(STAGE, "gave_up", len(events))
                return
            if self._state.abort.wait(delay):
                self._stats.drop(STAGE, "shutdown", len(events))
                return

    def _count(self, outcome: bulk.BulkOutcome, failure: str) -> None:
        """Documents in the exported and dropped counters; the attempt, if it failed, once in export_failures.

        ``failure``: why documents are to be sent again ("" when none are). An attempt that only had
        documents refused for good counts under the most frequent refusal.
        """
        stats = self._stats
        why = outcome.unreachable
        stats.reachability(NAME, why is None, f"{self._target}: {why}" if why else "")
        if outcome.delivered:
            stats.export_done(NAME, outcome.delivered)
        for reason, count in outcome.rejected.items():
            stats.drop(STAGE, reason, count)
        if not failure and outcome.rejected:
            failure = max(outcome.rejected, key=outcome.rejected.__getitem__)
        if failure:
            stats.export_failure(NAME, failure)

    def _install_templates(self) -> str | None:
        """Put the ILM policy (when allowed) and the index template; the failure reason when worth trying again."""
        config = self._config
        try:
            policy_problem = templates.install(self._client, config.data_stream, config.ilm_policy)
        except TransportError as error:
            self._stats.reachability(NAME, False, f"{self._target}: {bulk.connection_problem(error)}")
            self._stats.export_failure(NAME, "unreachable")
            return "unreachable"
        except UnsupportedProductError:
            self._stats.reachability(NAME, False, f"{self._target}: {bulk.NOT_ELASTICSEARCH}")
            self._stats.export_failure(NAME, "not_elasticsearch")
            return "not_elasticsearch"
        except ApiError as error:
            status = error.status_code
            if bulk.retryable(status) or status == 401:
                self._stats.reachability(NAME, False, f"{self._target}: HTTP {status} putting the index template")
                self._stats.export_failure(NAME, f"http_{status}")
                return f"http_{status}"
            # 403 (no manage_index_templates privilege) or a template this Elasticsearch refuses:
            # documents can still be written to a stream an operator set up (and are refused otherwise).
            log.warning(
                "exporter %s: cannot install the index template (HTTP %d: %s); writing to an existing data stream",
                NAME,
                status,
                error.message,
            )
            self._stats.export_failure(NAME, "template_refused")
        else:
            if policy_problem:
                # No ILM privilege: the template (and so the data stream) is in place; retention is not.
                log.warning(
                    "exporter %s: cannot check or put the ILM policy %s (%s); the index template is installed, "
                    "put the policy yourself for retention",
                    NAME,
                    config.ilm_policy,
                    policy_problem,
                )
        self._stats.reachability(NAME, True)
        self._templates_pending = False
        return None
