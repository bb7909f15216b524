"""Both OTLP receivers as one component, each part present only when enabled."""

from __future__ import annotations

from telemetry.receivers.otlp.grpc_receiver import OtlpGrpcReceiver
from telemetry.receivers.otlp.http_receiver import OtlpHttpReceiver


class OtlpReceiver:
    def __init__(self, grpc: OtlpGrpcReceiver | None, http: OtlpHttpReceiver | None) -> None:
        self.grpc = grpc
        self.http = http

    @property
    def grpc_port(self) -> int:
        return self.grpc.port if self.grpc is not None else 0

    @property
    def http_port(self) -> int:
        return self.http.port if self.http is not None else 0

    def start(self) -> None:
        started: list[OtlpGrpcReceiver | OtlpHttpReceiver] = []
        try:
            for part in (self.grpc, self.http):
                if part is not None:
                    part.start()
                    started.append(part)
        except Exception:
            # One port taken must not leave the other half listening.
            for part in started:
                part.shutdown()
            raise

    def shutdown(self) -> None:
        """Idempotent."""
        for part in (self.grpc, self.http):
            if part is not None:
                part.shutdown()
