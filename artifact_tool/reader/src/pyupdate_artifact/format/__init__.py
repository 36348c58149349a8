"""The v3 format as plain data: bytes in, objects out, no file I/O."""
