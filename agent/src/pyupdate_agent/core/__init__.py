"""The update as one state machine, shared by `pyupdate install|commit|rollback` and the daemon.

names.py   the names of the states, outcomes and modes (loaded without the table)
states.py  the one transition table, what resumes where (and its doc)
record.py  the one record of an update (kept in the store, store.py)
runner.py  runs the table: the record first, then the state's steps
steps.py   the update's actions, one per `Do` of the table
errors.py  a refusal (nothing changes) and an abort (409)
"""
