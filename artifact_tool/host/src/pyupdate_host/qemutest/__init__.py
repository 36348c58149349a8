"""pyupdate-qemu-test: the update, commit and rollback scenarios on a build's own images.

build_output (what the build made) -> media (the artifacts' disk, a broken
release) -> runner (one fresh disk per scenario) -> scenarios (on a Target:
power, console, shell; machine.py is QEMU behind it) -> report (JUnit, summary).
server.py is the throw-away pyupdate-server of the managed scenario.
"""
