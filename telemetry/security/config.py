"""The ``auth`` and ``tls`` blocks every server's config carries (receivers, the graph API and UI).

Shaped like the OpenTelemetry Collector's server settings (``tls: {cert_file, key_file, client_ca_file}``)
and its bearertokenauth extension, folded into one key: ``auth: {bearer_token: ${env:TOKEN}}``. Both
are off by default. TLS files are read by ``validate()``, so ``check-config`` reports a missing,
unreadable or mismatched certificate or key under its key path, before any server starts.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

MIN_TOKEN_LENGTH = 16


@dataclass
class AuthConfig:
    # Empty: no authentication. Set it from the environment (${env:NAME}) rather than in the file.
    bearer_token: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_token)

    def validate(self) -> list[str]:
        # Never echo the token: these messages are printed.
        token = self.bearer_token
        if token and (token != token.strip() or not token.isascii() or not token.isprintable() or " " in token):
            return ["bearer_token: must be printable ASCII without spaces (it travels in an HTTP header)"]
        if token and len(token) < MIN_TOKEN_LENGTH:
            # A short token can be guessed; `openssl rand -hex 16` gives 32 characters.
            return [f"bearer_token: must be at least {MIN_TOKEN_LENGTH} characters (try: openssl rand -hex 16)"]
        return []


@dataclass
class TlsConfig:
    cert_file: str = ""  # PEM certificate (chain); with key_file, the server speaks TLS only
    key_file: str = ""  # PEM private key, unencrypted
    client_ca_file: str = ""  # PEM CA bundle: when set, clients must present a certificate it signed

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file or self.key_file)

    def validate(self) -> list[str]:
        if not self.enabled:
            return ["client_ca_file: needs cert_file and key_file"] if self.client_ca_file else []
        errors = [f"{key}: needed when {other} is set" for key, other in _PAIRS if not getattr(self, key)]
        errors += [
            f"{key}: cannot read {path!r}: {problem}"
            for key in ("cert_file", "key_file", "client_ca_file")
            if (path := getattr(self, key)) and (problem := _unreadable(path))
        ]
        if errors:
            return errors
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert_file, self.key_file)
        except ssl.SSLError as error:
            return [
                f"cert_file: {self.cert_file!r} and key_file {self.key_file!r} are not a PEM certificate and "
                f"its matching unencrypted private key ({error.reason or error})"
            ]
        if self.client_ca_file:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=self.client_ca_file)
            except ssl.SSLError as error:
                return [f"client_ca_file: {self.client_ca_file!r} is not a PEM CA bundle ({error.reason or error})"]
        return []


_PAIRS = (("cert_file", "key_file"), ("key_file", "cert_file"))


def _unreadable(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as error:
        return error.strerror or str(error)
    except ValueError as error:  # a path holding a NUL byte ("embedded null byte")
        return str(error)
    return ""
