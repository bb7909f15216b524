"""Build the ALS receiver from its config."""

from __future__ import annotations

from telemetry.envoy.peers import PeerTable
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.als.receiver import AlsReceiver
from telemetry.selfmetrics import SelfStats


def create_receiver(config: AlsConfig, pipeline: Pipeline, stats: SelfStats, peers: PeerTable) -> AlsReceiver:
    return AlsReceiver(config, pipeline, stats, peers)
