"""Managed mode: the daemon that polls the server (docs/agent.md#managed-mode).

machine.py    the table (core/states.py) in managed mode: Idle, Sync, the server's part
session.py    identity, device key, token
reporting.py  statuses, the result, the deployment log
client.py     Mender device API v1 (+ v2 next); downloads: ../download.py (Range resumes)
(../backoff.py  the one backoff rule, shared with standalone downloads)
identity.py   device key, identity and inventory scripts
"""
