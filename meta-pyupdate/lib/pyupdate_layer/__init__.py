"""Plain-Python helpers of meta-pyupdate, importable from bitbake (addpylib) and from pytest.

Nothing here imports bb: each function takes `getvar`, a callable returning
the expanded value of a variable or None, so tests pass a dict's `.get`.
"""

# Imported by bitbake's addpylib so `${@pyupdate_layer.checks...}` works in metadata.
BBIMPORTS = ["checks", "board", "features"]
