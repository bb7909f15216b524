"""Securing the collector's servers: bearer-token authentication, TLS, and keeping secrets out of output."""
