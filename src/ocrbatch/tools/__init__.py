"""Thin wrappers of outside libraries (Pillow, pypdfium2, ...), translating their
exceptions into :mod:`ocrbatch.errors` at this boundary."""
