"""The detak firmware-bridge wire protocol (issue 6): framing, messages, the virtual device,
and a reference C encoder for firmware authors (``c/``). The specification is
``docs/protocol.md``.

* `detak.firmware_bridge.framing`: CRC-16/CCITT-FALSE, COBS, `encode_frame`, `FrameDecoder`;
* `detak.firmware_bridge.messages`: the message types, `encode_message`, `decode_packet`;
* `detak.firmware_bridge.emulator`: `VirtualDevice` (with `emu_config` for ``emu://`` URLs and
  `serve` to put it on a pseudo-terminal or TCP socket).

>>> from detak.firmware_bridge import encode_frame, FrameDecoder
>>> FrameDecoder().feed(encode_frame(b"\\x01\\x80\\x00\\x00"))
[b'\\x01\\x80\\x00\\x00']
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "encode_frame": "detak.firmware_bridge.framing",
    "FrameDecoder": "detak.firmware_bridge.framing",
    "crc16": "detak.firmware_bridge.framing",
    "encode_message": "detak.firmware_bridge.messages",
    "decode_packet": "detak.firmware_bridge.messages",
    "VirtualDevice": "detak.firmware_bridge.emulator",
    "parse_emu_url": "detak.firmware_bridge.emu_config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'detak.firmware_bridge' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
