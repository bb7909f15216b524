"""Parsing worker processes for the file tailing receiver (``receivers.filelog.workers``).

The GIL keeps one Python process on one core, and parsing is most of what file tailing costs. With
workers, the collector's process scans the globs and gives each file to one worker (the one that had the
file's path before, else the least loaded; the file keeps it while it is known), so per-file order,
rotation and partial-line handling stay exactly those of the in-process receiver, which each worker runs.
One file is parsed by one worker: a single busy file does not use two cores.

A worker does not send its Records back (pickling a Record costs about as much as parsing it): it sends
the Istio metrics' totals of each chunk (``IstioMetrics.take_delta``), which the collector adds to its own
(``IstioMetrics.merge``: counts, sums and buckets are sums, so the result is exact), and only the Records
that the collector's other sinks need (``outputs.RecordNeeds``). For the Fluentd forward sink a worker
encodes the events itself (the sink's encoder, its tag template) and sends the encoded entries, which the
collector hands to the sink as they are: the collector's process neither rebuilds nor encodes those Records,
and encoding is spread over the workers. See ``pool`` for the collector's side and ``worker`` for the
worker's.
"""
