"""HMAC-SHA256 split into a precomputed part and a one-block tail, so wrk's Lua can sign each request.

Every benchmark request has its own head sha, so its own signature. The body is laid out as
PREFIX + TAIL where len(PREFIX) is a multiple of 64 and TAIL (`"sha":"<40 hex>"}}}`) plus SHA-256
padding fits one block. Python computes the SHA-256 state after (key ^ ipad) + PREFIX and after
(key ^ opad); the Lua script then needs two compressions per request.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

_K = [
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
]
_H0 = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19]
_M = 0xFFFFFFFF


def _ror(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M


def compress(state: list[int], block: bytes) -> list[int]:
    w = list(struct.unpack(">16I", block))
    for i in range(16, 64):
        s0 = _ror(w[i - 15], 7) ^ _ror(w[i - 15], 18) ^ (w[i - 15] >> 3)
        s1 = _ror(w[i - 2], 17) ^ _ror(w[i - 2], 19) ^ (w[i - 2] >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & _M)
    a, b, c, d, e, f, g, h = state
    for i in range(64):
        t1 = (h + (_ror(e, 6) ^ _ror(e, 11) ^ _ror(e, 25)) + ((e & f) ^ (~e & g)) + _K[i] + w[i]) & _M
        t2 = ((_ror(a, 2) ^ _ror(a, 13) ^ _ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & _M
        a, b, c, d, e, f, g, h = (t1 + t2) & _M, a, b, c, (d + t1) & _M, e, f, g
    return [(x + y) & _M for x, y in zip(state, [a, b, c, d, e, f, g, h], strict=True)]


def midstate(data: bytes) -> list[int]:
    assert len(data) % 64 == 0
    state = list(_H0)
    for start in range(0, len(data), 64):
        state = compress(state, data[start:start + 64])
    return state


def _pad_block(tail: bytes, total_len: int) -> bytes:
    block = tail + b"\x80" + b"\x00" * ((55 - len(tail)) % 64) + struct.pack(">Q", total_len * 8)
    assert len(block) == 64, "the tail must fit one block with its padding"
    return block


def split_hmac(key: bytes, prefix: bytes) -> tuple[list[int], list[int]]:
    """(inner state after ipad+prefix, outer state after opad): what the Lua script starts from."""
    assert len(prefix) % 64 == 0 and len(key) <= 64
    k = key.ljust(64, b"\x00")
    return midstate(bytes(b ^ 0x36 for b in k) + prefix), midstate(bytes(b ^ 0x5C for b in k))


def finish(inner: list[int], outer: list[int], prefix_len: int, tail: bytes) -> str:
    """The same two compressions the Lua script does, to check it against `hmac`."""
    digest = struct.pack(">8I", *compress(inner, _pad_block(tail, 64 + prefix_len + len(tail))))
    return struct.pack(">8I", *compress(outer, _pad_block(digest, 64 + 32))).hex()


def self_check() -> None:
    key, prefix, tail = b"secret", b"{" + b" " * 127, b'"sha":"' + b"a" * 40 + b'"}}}'
    inner, outer = split_hmac(key, prefix)
    assert finish(inner, outer, len(prefix), tail) == hmac.new(key, prefix + tail, hashlib.sha256).hexdigest()
