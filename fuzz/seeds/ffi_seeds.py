#!/usr/bin/env python3
"""Writes the seeds of the C ABI targets (fuzz/corpus/ffi_submit, ffi_workflow_steps): calls a
binding makes, encoded as the targets decode their input (arbitrary's `Unstructured`: integers
in a range from the front, big-endian, as few bytes as the range needs; plain integers
little-endian). Run from anywhere: python3 fuzz/seeds/ffi_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, '..', 'corpus')


class U:
    def __init__(self):
        self.b = bytearray()

    def rng(self, lo, hi, v):
        assert lo <= v <= hi, (lo, v, hi)
        if lo == hi:
            return
        r, n = hi - lo, 0
        while n < 8 and (r >> (n * 8)) > 0:
            n += 1
        self.b += (v - lo).to_bytes(n, 'big')

    def u8(self, v):
        self.b.append(v & 0xFF)

    def le(self, fmt, v):
        self.b += struct.pack('<' + fmt, v)

    def raw(self, bs):
        self.b += bs


# ---- ffi_submit ------------------------------------------------------------------------
NAMES = ["value", "vu", "iter", "url", "status", "time", "_field", "_measurement",
         "http_req_duration", "a b", "k=v", "c,d", "é", "x\\", "#c", "\t"]
BASE_TS = 1_700_000_000_000_000_000


def s_string(u, s):
    """A string: a NAMES entry, input bytes, or None (NULL) / ('null', n)."""
    if s is None:
        u.rng(0, 15, 0)
    elif isinstance(s, tuple):
        u.rng(0, 15, 1)
        u.rng(1, 8, s[1])
    elif isinstance(s, str) and s in NAMES:
        u.rng(0, 15, 2)
        u.rng(0, len(NAMES) - 1, NAMES.index(s))
    else:
        b = s.encode() if isinstance(s, str) else s
        u.rng(0, 15, 8)
        u.rng(0, 20, len(b))
        u.raw(b)


def s_float(u, v):
    if isinstance(v, str):
        u.rng(0, 9, {'nan': 1, '-inf': 2, 'max': 3}[v])
    elif isinstance(v, float) and not float(v * 8).is_integer():
        u.rng(0, 9, 0)
        u.le('d', v)
    else:
        u.rng(0, 9, 4)
        u.le('h', int(v * 8))


def s_ts(u, t):
    if t == 'now':
        u.rng(0, 7, 0)
    elif t == 'max':
        u.rng(0, 7, 2)
        u.u8(0)
    elif isinstance(t, int) and t >= 256:
        u.rng(0, 7, 1)
        u.le('q', t)
    else:
        u.rng(0, 7, 3)
        u.u8(t)


def s_err(u, n):
    if n == 0:
        u.rng(0, 3, 0)
    elif n == 300:
        u.rng(0, 3, 3)
    else:
        u.rng(0, 3, 2)
        u.u8(n - 1)


KINDS = {'float': 0, 'int': 1, 'uint': 2, 'bool': 3, 'string': 4}


def s_field(u, key, kind, val=0, text=None):
    s_string(u, key)
    if isinstance(kind, int) and kind >= 5:
        u.rng(0, 10, 10)
        u.le('I', kind)
    else:
        u.rng(0, 10, KINDS[kind])
    s_string(u, text)
    u.u8(1 if val else 0)                       # bool_value
    s_float(u, float(val) if kind == 'float' else 0)
    u.le('q', int(val) if kind == 'int' else 0)
    u.le('Q', int(val) if kind == 'uint' else 0)


def submit(sink, series, arrays, points, record=None, want_accepted=True, err=300):
    """series: [(measurement, [(k, v)], value_field, kind)]; arrays: [[field args]];
    points: [(series index or ('id', n), array index or None or ('null', n), value, ts)]."""
    u = U()
    u.rng(0, 2, sink)
    u.rng(0, 3, len(series))
    for m, tags, vf, kind in series:
        s_string(u, m)
        u.rng(0, 4, len(tags))
        for k, v in tags:
            s_string(u, k)
            s_string(u, v)
        if not tags:
            u.u8(0)                             # not NULL
        s_string(u, vf)
        s_err(u, 300)
        u.rng(0, 4, kind)                       # assumes the series is taken
    u.rng(0, 3, len(arrays))
    for a in arrays:
        u.rng(1, 6, len(a))
        for f in a:
            s_field(u, *f)
    u.rng(0, 40, len(points))
    for sid, arr, value, ts in points:
        if isinstance(sid, tuple):
            u.rng(0, 7, 0)
            u.le('I', sid[1])
        else:
            u.rng(0, 7, 1)
            u.rng(0, len(series) - 1, sid)
        if arr is None:
            u.rng(0, 7, 1)
        elif isinstance(arr, tuple):
            u.rng(0, 7, 0)
            u.rng(1, 3, arr[1])
        else:
            u.rng(0, 7, 3)
            ai, n = arr if isinstance(arr, list) else (arr, len(arrays[arr]))
            u.rng(0, len(arrays) - 1, ai)
            u.rng(0, len(arrays[ai]), n)
        s_float(u, value)
        s_ts(u, ts)
    if not points:
        u.u8(0)                                 # not NULL
    u.u8(1 if want_accepted else 0)
    s_err(u, err)
    m, tags, nfields, ts = record or ('workflow_step', [('step', 'login')], 1, 'now')
    s_string(u, m)
    u.rng(0, 3, len(tags))
    for k, v in tags:
        s_string(u, k)
        s_string(u, v)
    if arrays:
        u.rng(0, len(arrays[0]), min(nfields, len(arrays[0])))
    s_ts(u, ts)
    s_err(u, 64)
    u.u8(47)
    return bytes(u.b)


K6_TAGS = [('method', 'GET'), ('status', '200'), ('url', 'http://h/a b')]
TRIO = [('vu', 'int', 3), ('iter', 'int', 7), ('url', 'string', 0, 'http://h/x')]
SUBMIT = {
    'k6_batch': submit(0, [('http_req_duration', K6_TAGS, 'value', 2)], [TRIO],
                       [(0, 0, 12.5, 1), (0, 0, 13.25, 2), (0, 0, 14.0, 2), (0, None, 1.0, 3)]),
    'shared_array_two_series': submit(0, [('http_reqs', K6_TAGS[:2], 'value', 0),
                                          ('vus', [], 'value', 1)],
                                      [TRIO], [(0, 0, 1, 'now'), (1, 0, 10, 'now'),
                                               (0, 0, 1, 'now'), (1, 0, 11, 'now')]),
    'value_field_clash': submit(0, [('m', [], 'vu', 2)], [TRIO], [(0, 0, 1.5, 4), (0, 0, 1.5, 5)]),
    'all_types': submit(0, [('m', [('t', 'x')], 'value', 2)],
                        [[('f', 'float', 1.5), ('i', 'int', -42), ('u', 'uint', 2**63 + 5),
                          ('b', 'bool', 1), ('s', 'string', 0, 'a "q" \\ z')]],
                        [(0, 0, 0.0, 9), (0, [0, 3], 1.0, 10)]),
    'unknown_type_null_key': submit(0, [('m', [], 'value', 2)],
                                    [[('ok', 'float', 1.0), (None, 'int', 1), ('k', 9, 0)],
                                     [(('null', 3), 'string', 0, ('null', 2))]],
                                    [(0, 0, 1.0, 1), (0, 1, 1.0, 2), (0, ('null', 2), 1.0, 3)]),
    'bad_values_ts': submit(0, [('m', [], 'value', 2)], [],
                            [(0, None, 'nan', 1), (0, None, '-inf', 2), (0, None, 'max', 3),
                             (0, None, 1.0, 'max'), (0, None, 1.0, -9223372036854775807),
                             (('id', 999999), None, 1.0, 4)]),
    'invalid_utf8_names': submit(0, [(b'm\xff\xfe', [(b'k\xc3', 'v')], 'value', 2),
                                     ('ok', [('é', 'c,d')], 'x\\', 2)],
                                 [[(b'\xe9', 'int', 1)]], [(1, 0, 1.0, 1)]),
    'reserved_names': submit(0, [('_measurement', [('time', 'x')], '_field', 2),
                                 ('#c', [('a b', 'k=v')], 'value', 2)], [[('time', 'int', 1)]],
                             [(0, 0, 1.0, 1), (1, 0, 1.0, 1)]),
    'both_mode_kinds': submit(1, [('http_reqs', K6_TAGS, 'value', 0), ('vus', [], 'value', 1),
                                  ('checks', [], 'value', 3)], [TRIO],
                              [(0, 0, 1, 1), (1, None, 5, 1), (2, None, 1, 1), (2, None, 0, 2)]),
    'aggregate_mode': submit(2, [('http_req_duration', K6_TAGS, 'value', 2)], [],
                             [(0, None, v, t) for v, t in [(1, 1), (2.5, 1), (1000, 2), (0.125, 200)]]),
    'empty_and_null_batch': submit(0, [], [], [], err=0),
    'small_err_buffer': submit(0, [('m', [], 'value', 2)], [[('s', 'string', 0, 'ééééé')]],
                               [(0, 0, 'nan', 1)], err=2),
    'record_many_tags': submit(0, [], [[('duration', 'float', 0.5), ('success_count', 'int', 1)]], [],
                               record=('workflow_step', [('workflow', 'checkout'), ('step', 'pay'),
                                                         ('status', 'success')], 2, 5)),
    'record_repeated_field': submit(0, [], [[('a', 'int', 1), ('a', 'int', 2)]], [],
                                    record=('m', [], 2, 1)),
    'series_kind_unknown': submit(0, [('m', [], 'value', 4)], [], [(0, None, 1.0, 1)]),
}

# ---- ffi_workflow_steps ---------------------------------------------------------------
def w_range(u, arena_len, r):
    """r: (off, len) inside the arena, 'empty', or ('any', off, len)."""
    if r == 'empty':
        u.rng(0, 9, 2)
    elif r[0] == 'any':
        u.rng(0, 9, 0)
        u.le('I', r[1])
        u.le('I', r[2])
    else:
        off, n = r
        u.rng(0, 9, 3)
        u.rng(0, arena_len, off)
        u.rng(0, min(arena_len - off, 24), n)


def workflow(arena, tags, steps, want_accepted=True, err=200):
    """tags: [(key range, value range)]; steps: dicts with workflow, step, action (ranges),
    tags (first, count) or None, flags, duration, end, iteration."""
    u = U()
    u.rng(0, 96, len(arena))
    u.raw(arena)
    u.rng(0, 6, len(tags))
    for k, v in tags:
        w_range(u, len(arena), k)
        w_range(u, len(arena), v)
    u.rng(0, 24, len(steps))
    for s in steps:
        for part in ('workflow', 'step', 'action'):
            w_range(u, len(arena), s.get(part, 'empty'))
        t = s.get('tags')
        if t is None:
            u.rng(0, 5, 1)
        elif t[0] == 'any':
            u.rng(0, 5, 0)
            u.le('I', t[1])
            u.le('I', t[2])
        else:
            u.rng(0, 5, 3)
            u.rng(0, len(tags), t[0])
            u.rng(0, len(tags) - t[0], t[1])
        flags = s.get('flags', 1)
        if flags > 3:
            u.rng(0, 9, 0)
            u.le('I', flags)
        else:
            u.rng(0, 9, 4 + flags if flags else 8)
        d = s.get('duration', 0.25)
        if d == 'nan':
            u.rng(0, 7, 1)
        elif d == -1:
            u.rng(0, 7, 2)
        elif isinstance(d, float) and d * 1000 != int(d * 1000):
            u.rng(0, 7, 0)
            u.le('d', d)
        else:
            u.rng(0, 7, 3)
            u.le('H', int(d * 1000))
        e = s.get('end', 1)
        if e == 'now':
            u.rng(0, 5, 0)
        elif e >= 256 or e < 0:
            u.rng(0, 5, 1)
            u.le('q', e)
        else:
            u.rng(0, 5, 2)
            u.u8(e)
        u.le('q', s.get('iteration', 0))
    u.u8(1 if want_accepted else 0)
    u.u8(err)
    return bytes(u.b)


A = b'checkoutloginapi_callsearchenvprodregioneu west'
R = {'checkout': (0, 8), 'login': (8, 5), 'api_call': (13, 8), 'search': (21, 6),
     'env': (27, 3), 'prod': (30, 4), 'region': (34, 6), 'eu west': (40, 7)}
TAGS = [(R['env'], R['prod']), (R['region'], R['eu west'])]
WF = {
    'one_step': workflow(A, [], [dict(workflow=R['checkout'], step=R['login'])]),
    'steps_with_tags': workflow(A, TAGS, [
        dict(workflow=R['checkout'], step=R['login'], action=R['api_call'], tags=(0, 2),
             flags=3, iteration=7, end=1),
        dict(workflow=R['checkout'], step=R['search'], tags=(1, 1), flags=1, end=1),
        dict(workflow=R['checkout'], step=R['search'], tags=(0, 1), flags=0, end=1,
             duration=1.5),
    ]),
    'failures_and_now': workflow(A, TAGS, [
        dict(workflow=R['checkout'], step=R['login'], flags=0, end='now'),
        dict(workflow=R['checkout'], step=R['login'], flags=2, iteration=-1, end='now'),
    ]),
    'bad_ranges': workflow(A, [(('any', 1000, 5), R['prod'])], [
        dict(workflow=('any', 40, 100), step=R['login']),
        dict(workflow=R['checkout'], step=R['login'], tags=('any', 1, 4294967295)),
        dict(workflow=R['checkout'], step=R['login'], tags=(0, 1)),
        dict(workflow=('any', 4294967295, 2), step=R['login']),
    ]),
    'bad_values': workflow(A, [], [
        dict(workflow='empty', step=R['login']),
        dict(workflow=R['checkout'], step='empty'),
        dict(workflow=R['checkout'], step=R['login'], duration='nan'),
        dict(workflow=R['checkout'], step=R['login'], duration=-1),
        dict(workflow=R['checkout'], step=R['login'], flags=0x80),
        dict(workflow=R['checkout'], step=R['login'], end=9223372036854775807),
    ]),
    'invalid_utf8_arena': workflow(b'wf\xff\xfestep\xc3', [((0, 2), (4, 4))], [
        dict(workflow=(0, 4), step=(4, 4)),
        dict(workflow=(0, 2), step=(4, 4), tags=(0, 1)),
        dict(workflow=(0, 2), step=(4, 5)),
    ]),
    'names_needing_escapes': workflow(b'a b,c=d"e\\f\tg#h', [((0, 3), (3, 4))], [
        dict(workflow=(0, 5), step=(5, 5), action=(10, 4), tags=(0, 1)),
        dict(workflow=(13, 2), step=(11, 1)),
    ]),
    'duplicate_tag_keys': workflow(A, [(R['env'], R['prod']), (R['env'], R['login'])], [
        dict(workflow=R['checkout'], step=R['login'], tags=(0, 2)),
    ]),
    'reserved_tag_key': workflow(b'workflowstepstatusx', [((0, 8), (18, 1)), ((12, 6), (18, 1))], [
        dict(workflow=(18, 1), step=(18, 1), tags=(0, 1)),
        dict(workflow=(18, 1), step=(18, 1), tags=(1, 1)),
    ]),
    'many_steps': workflow(A, TAGS, [
        dict(workflow=R['checkout'], step=R[n], tags=(i % 3, 0 if i % 3 == 2 else 1),
             flags=i % 4, iteration=i, end=i)
        for i, n in enumerate(['login', 'search', 'api_call'] * 8)
    ]),
    'tiny_err_buffer': workflow(A, [], [dict(workflow='empty', step='empty')], err=3),
    'empty_call': workflow(b'', [], [], want_accepted=False, err=0),
}

for target, seeds in (('ffi_submit', SUBMIT), ('ffi_workflow_steps', WF)):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
    print(target, len(seeds))
