"""Bearer-token authentication for grpc servers: an interceptor that ends unauthenticated calls.

A refused call is answered UNAUTHENTICATED before its handler runs and before a request message is
read; the aborting handler has the intercepted method's streaming shape, so grpc treats it as it would
the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from telemetry.security.auth import BearerAuth, refusal


class BearerTokenInterceptor(grpc.ServerInterceptor):
    def __init__(self, auth: BearerAuth, refused: Callable[[], None]) -> None:
        self._auth = auth
        self._refused = refused

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        metadata = handler_call_details.invocation_metadata or ()  # type: ignore[attr-defined]
        authorization = next((str(value) for key, value in metadata if key == "authorization"), None)
        if self._auth.allows(authorization):
            return handler
        self._refused()
        return _deny(handler, refusal(authorization))


def _deny(handler: grpc.RpcMethodHandler, details: str) -> grpc.RpcMethodHandler:
    def abort(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, details)

    request_streaming = handler.request_streaming  # type: ignore[attr-defined]
    response_streaming = handler.response_streaming  # type: ignore[attr-defined]
    if request_streaming and response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)
