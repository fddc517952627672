#!/usr/bin/env python3
"""Writes the seeds of the spool_records target (fuzz/corpus/spool_records): raw segments (mode
byte 0: intact, damaged, cut, full of magic bytes) and structured ones (modes 1 and 2: records
and damage encoded as the target decodes them with arbitrary's `Unstructured`: integers in a
range from the front, big-endian, as few bytes as the range needs). The record format is
src/writer/spool/record.rs's (CRC-32 is zlib's). Run from anywhere: python3 fuzz/seeds/spool_seeds.py"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'corpus', 'spool_records')

USER, SELF, ACK, PAD = 0, 1, 2, 3  # the target's KINDS order
CODE = {USER: 1, SELF: 2, ACK: 3, PAD: 4}
HEADER = 36


def header(kind_code, rid, lines, payload, length=None, crc=None):
    h = b'PSR1' + bytes([kind_code, 0, 0, 0]) + struct.pack(
        '<QQII', rid, lines, len(payload) if length is None else length,
        zlib.crc32(payload) if crc is None else crc)
    return h + struct.pack('<I', zlib.crc32(h))


def rec(kind, rid, lines, payload):
    return header(CODE[kind], rid, lines, payload) + payload


def lp(n, tag='a'):
    return b''.join(b'http_req_duration,host=%s,url=/x value=%d.5 %d\n'
                    % (tag.encode(), i, 1700000000000000000 + i) for i in range(n))


class U:
    def __init__(self, mode):
        self.b = bytearray([mode])

    def rng(self, lo, hi, v):
        assert lo <= v <= hi, (lo, v, hi)
        if lo == hi:
            return
        r, n = hi - lo, 0
        while n < 8 and (r >> (n * 8)) > 0:
            n += 1
        self.b += (v - lo).to_bytes(n, 'big')

    def raw(self, bs):
        self.b += bs


def structured(mode, records, damage):
    """records: (kind, id, lines, payload); damage: ('flip', pos, bit), ('fill', start, n,
    value), ('insert', at, garbage), ('cut', keep). Ids follow the target's realistic rule."""
    u = U(mode)
    u.rng(0, 12, len(records))
    size = 0
    for i, (kind, rid, lines, payload) in enumerate(records):
        u.rng(0, 3, kind)
        if mode == 1:
            u.rng(1, 4, 1)  # ratio(3, 4): small ids and counts
        if kind == ACK:
            u.rng(1, max(i, 1), rid)
        else:
            u.rng(0, 3, rid - i - 1)
        u.rng(0, 5000, lines)
        if kind == ACK:
            if payload:
                u.rng(1, 8, 8)
            else:
                u.rng(1, 8, 1)
        if kind != ACK or payload:
            u.rng(0, 200, len(payload))
        assert len(payload) <= 200, len(payload)
        u.raw(payload)
        size += HEADER + len(payload)
    u.rng(0, 4, len(damage))
    for d in damage:
        if d[0] == 'flip':
            u.rng(0, 3, 0)
            u.rng(0, size - 1, d[1])
            u.rng(0, 7, d[2])
        elif d[0] == 'fill':
            u.rng(0, 3, 1)
            u.rng(0, size - 1, d[1])
            u.rng(1, 600, d[2])
            if d[3] == 0:
                u.rng(1, 4, 1)
            else:
                u.rng(1, 4, 4)
                u.raw(bytes([d[3]]))
        elif d[0] == 'insert':
            u.rng(0, 3, 2)
            u.rng(0, size, d[1])
            u.rng(1, 80, len(d[2]))
            u.raw(d[2])
            size += len(d[2])
        else:
            u.rng(0, 3, 3)
            u.rng(0, size, d[1])
            size = d[1]
    return bytes(u.b)


def raw(seg):
    return b'\x00' + seg


A = rec(USER, 1, 3, lp(3))
B = rec(USER, 2, 2, lp(2, 'b'))
C = rec(SELF, 3, 1, b'perfsink_writer,host=h sent=10i 1700000000000000000\n')
K = rec(ACK, 1, 0, b'')
SEG = A + B + K + C
flip = bytearray(SEG)
flip[len(A) + HEADER + 5] ^= 0x10
flip_header = bytearray(SEG)
flip_header[len(A) + 17] ^= 0x01

R3 = [(USER, 1, 3, lp(3)), (USER, 2, 2, lp(2, 'b')), (ACK, 1, 0, b''),
      (SELF, 4, 1, b'm v=1 1\n'), (USER, 5, 1, lp(1, 'c'))]
S = sum(HEADER + len(r[3]) for r in R3)
first = HEADER + len(R3[0][3])

SEEDS = {
    'raw_empty': raw(b''),
    'raw_intact': raw(SEG),
    'raw_payload_flip': raw(bytes(flip)),
    'raw_header_flip': raw(bytes(flip_header)),
    'raw_cut_in_header': raw(SEG[:len(A) + 20]),
    'raw_cut_in_payload': raw(SEG[:len(A) + HEADER + 7]),
    'raw_magic_only': raw(b'PSR1' * 256),
    'raw_magic_kind_zeros': raw(b'PSR1\x01\x00\x00\x00' * 128),
    'raw_len_over_max': raw(A + header(1, 9, 1, b'', length=(1 << 30) + 1, crc=0) + B),
    'raw_len_past_end': raw(A + header(1, 9, 1, b'', length=4096, crc=0) + b'x' * 40),
    'raw_garbage_between': raw(A + b'\xffPSR\x00PSR1junk' + B),
    'raw_padding_over_damage': raw(A + header(4, 0, 0, b'\x00' * 50) + b'\x00' * 50 + B),
    'raw_zeroed_sector': raw(A + b'\x00' * 512 + B + C),
    'st1_intact': structured(1, R3, []),
    'st1_payload_flip': structured(1, R3, [('flip', first + HEADER + 10, 3)]),
    'st1_header_flip': structured(1, R3, [('flip', first + 20, 0)]),
    'st1_insert_magic': structured(1, R3, [('insert', first + 40, b'PSR1\x01\x00\x00\x00' * 3)]),
    'st1_cut': structured(1, R3, [('cut', S - 20)]),
    'st1_zeroed_and_cut': structured(1, R3, [('fill', first - 10, 60, 0), ('cut', S - 3)]),
    'st2_intact': structured(2, R3, []),
    'st2_header_flip_and_cut': structured(2, R3, [('flip', 5, 2), ('cut', S - 50)]),
    'st2_short_garbage_between': structured(2, R3, [('insert', first, b'\xab' * 10)]),
    'st2_many': structured(2, R3, [('flip', first + 40, 7), ('insert', 3, b'PSR1'),
                                   ('fill', S - 100, 30, 0x55), ('cut', S - 10)]),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(data)
print('spool_records', len(SEEDS))
