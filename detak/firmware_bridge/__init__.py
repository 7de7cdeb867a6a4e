"""The detak firmware-bridge wire protocol, its emulator and reference C encoder (issue 6)."""
