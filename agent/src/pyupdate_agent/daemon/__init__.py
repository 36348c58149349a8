"""Managed mode: the daemon that polls the server (docs/agent.md#managed-mode).

states.py   the state enum and the one transition table
machine.py  runs the table, persisting each state before it runs
client.py   Mender device API v1 (+ v2 next), resumable Range downloads
identity.py device key, identity and inventory scripts
"""
