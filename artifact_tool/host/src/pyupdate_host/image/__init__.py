"""`pyupdate-image`: assemble an A/B disk image, its boot chain and its artifacts.

Build-host only (needs jinja2 and Debian's image tools). The boot logic is
specified in docs/boot-flow.md; usage in docs/image-tool.md.
"""
