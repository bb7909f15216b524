"""Access-log formats meshscope knows by name, and the order auto-detection tries them in."""

from __future__ import annotations

# Envoy's built-in default format (used when an access logger has no format).
ENVOY_DEFAULT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n'
)

# Istio's default text format (MeshConfig accessLogEncoding TEXT) since UPSTREAM_CLUSTER_RAW.
ISTIO = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

# The same format as Istio printed it before UPSTREAM_CLUSTER_RAW existed.
ISTIO_UPSTREAM_CLUSTER = ISTIO.replace("%UPSTREAM_CLUSTER_RAW%", "%UPSTREAM_CLUSTER%")

# Istio 1.2 to 1.8: Mixer's status where the response details are now.
ISTIO_MIXER = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    '%RESPONSE_CODE% %RESPONSE_FLAGS% "%DYNAMIC_METADATA(istio.mixer:status)%" '
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

# Istio's JSON encoding (accessLogEncoding JSON): one object per line, keys as Istio names them.
ISTIO_JSON = (
    '{"start_time":"%START_TIME%","method":"%REQ(:METHOD)%",'
    '"path":"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%","protocol":"%PROTOCOL%",'
    '"response_code":"%RESPONSE_CODE%","response_flags":"%RESPONSE_FLAGS%",'
    '"response_code_details":"%RESPONSE_CODE_DETAILS%",'
    '"connection_termination_details":"%CONNECTION_TERMINATION_DETAILS%",'
    '"upstream_transport_failure_reason":"%UPSTREAM_TRANSPORT_FAILURE_REASON%",'
    '"bytes_received":"%BYTES_RECEIVED%","bytes_sent":"%BYTES_SENT%","duration":"%DURATION%",'
    '"upstream_service_time":"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",'
    '"x_forwarded_for":"%REQ(X-FORWARDED-FOR)%","user_agent":"%REQ(USER-AGENT)%",'
    '"request_id":"%REQ(X-REQUEST-ID)%","authority":"%REQ(:AUTHORITY)%",'
    '"upstream_host":"%UPSTREAM_HOST%","upstream_cluster":"%UPSTREAM_CLUSTER_RAW%",'
    '"upstream_local_address":"%UPSTREAM_LOCAL_ADDRESS%",'
    '"downstream_local_address":"%DOWNSTREAM_LOCAL_ADDRESS%",'
    '"downstream_remote_address":"%DOWNSTREAM_REMOTE_ADDRESS%",'
    '"requested_server_name":"%REQUESTED_SERVER_NAME%","route_name":"%ROUTE_NAME%"}'
)

PRESETS: dict[str, str] = {
    "istio": ISTIO,
    "istio-upstream-cluster": ISTIO_UPSTREAM_CLUSTER,
    "istio-mixer": ISTIO_MIXER,
    "envoy": ENVOY_DEFAULT,
    "json": ISTIO_JSON,
}

# Most specific first: a line of the Istio format would not fit Envoy's shorter default.
DETECTION_ORDER: tuple[str, ...] = ("json", "istio", "istio-mixer", "envoy")
