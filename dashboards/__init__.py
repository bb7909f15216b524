"""Grafana dashboards as code (grafana-foundation-sdk) and the Prometheus rules that go with them.

``python -m dashboards.generate`` (or ``meshscope dashboards export DIR``) writes the dashboards' JSON;
the committed copies live in ``dashboards/json/``, the rules in ``dashboards/rules/``.
"""
