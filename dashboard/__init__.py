"""The checkout dashboard for Grafana, generated from code with Grafana's Foundation SDK
(https://grafana.github.io/grafana-foundation-sdk/) rather than written as JSON:
`panels.py` says what is on it, `grafana.py` turns that into the dashboard's JSON, and
`python -m dashboard` (`make dashboard`) writes it where the monitoring component makes a
ConfigMap of it for Grafana's dashboard sidecar. Not shipped; nothing in `service` imports it.
"""
