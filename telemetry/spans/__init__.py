"""Spans: conversions between other span formats and OTLP ``ResourceSpans``, the shape every trace receiver hands on."""
