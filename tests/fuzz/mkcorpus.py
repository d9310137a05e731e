#!/usr/bin/env python3
"""Writes the seed inputs of the jute fuzzer (fuzz_jute.c) into corpus/.

Each input is what a client sends a server: length-prefixed frames, first a
ConnectRequest, then RequestHeader + body. The encoding here is written from
zookeeper.jute on its own, sharing nothing with proto/zk.c. Seeds are named
seed-*; the fuzzer's finds (hash names) sit beside them. Rerunning this
rewrites the seeds only.

    tests/fuzz/mkcorpus.py [DIR]
"""
import os
import struct
import sys


def i32(v):
    return struct.pack('>i', v)


def i64(v):
    return struct.pack('>q', v)


def boolean(v):
    return b'\x01' if v else b'\x00'


def ustr(s):
    if s is None:
        return i32(-1)
    b = s.encode('utf-8') if isinstance(s, str) else s
    return i32(len(b)) + b


buf = ustr


def vec(items, enc):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b''.join(enc(x) for x in items)


def acl(perms, scheme, ident):
    return i32(perms) + ustr(scheme) + ustr(ident)


OPEN = [(31, 'world', 'anyone')]


def acls(lst):
    return vec(lst, lambda a: acl(*a))


def stat(base=0):
    return (i64(base + 1) + i64(base + 2) + i64(base + 3) + i64(base + 4) + i32(5) + i32(6) +
            i32(7) + i64(0) + i32(9) + i32(10) + i64(base + 11))


def frame(body):
    return i32(len(body)) + body


def connect(read_only=True, session=0, passwd=b'\0' * 16):
    body = i32(0) + i64(0) + i32(30000) + i64(session) + buf(passwd)
    if read_only is not None:
        body += boolean(read_only)
    return frame(body)


def req(xid, op, body=b''):
    return frame(i32(xid) + i32(op) + body)


def create(path, data=b'x', acl_list=OPEN, flags=0, ttl=None):
    b = ustr(path) + buf(data) + acls(acl_list) + i32(flags)
    if ttl is not None:
        b += i64(ttl)
    return b


def mh(op, done=False, err=-1):
    return i32(op) + boolean(done) + i32(err)


DONE = mh(-1, True, -1)

C = connect()
seeds = {
    'connect': C,
    'connect-old-client': connect(read_only=None),
    'connect-readonly': connect(read_only=True, session=0x1000000abcd, passwd=b'p' * 16),
    'connect-null-passwd': frame(i32(0) + i64(5) + i32(4000) + i64(7) + i32(-1) + b'\x00'),
    'ping': C + req(-2, 11),
    'create': C + req(1, 1, create('/app', b'hello')),
    'create-seq-ephemeral': C + req(1, 1, create('/locks/lock-', b'', flags=3)),
    'create2': C + req(2, 15, create('/app/c2', b'', flags=0)),
    'create-container': C + req(3, 19, create('/box', None, flags=4)),
    'create-ttl': C + req(4, 21, create('/ttl', b'd', flags=5, ttl=60000)),
    'create-acls': C + req(5, 1, create('/a', b'', [(31, 'world', 'anyone'), (1, 'ip', '10.0.0.0/8'),
                                                      (31, 'digest', 'bob:HASH'), (0, None, '')])),
    'delete': C + req(6, 2, ustr('/app') + i32(-1)),
    'exists': C + req(7, 3, ustr('/app') + boolean(True)),
    'get-data': C + req(8, 4, ustr('/zookeeper/config') + boolean(False)),
    'set-data': C + req(9, 5, ustr('/app') + buf(b'\x00\xff' * 8) + i32(3)),
    'get-acl': C + req(10, 6, ustr('/app')),
    'set-acl': C + req(11, 7, ustr('/app') + acls(OPEN) + i32(0)),
    'get-children': C + req(12, 8, ustr('/') + boolean(True)),
    'sync': C + req(13, 9, ustr('/app')),
    'get-children2': C + req(14, 12, ustr('/app') + boolean(False)),
    'check': C + req(15, 13, ustr('/app') + i32(2)),
    'multi': C + req(16, 14,
                     mh(1) + create('/m', b'1') + mh(15) + create('/m/2', b'') +
                     mh(19) + create('/m/c', b'', flags=4) + mh(21) + create('/m/t', b'', flags=6, ttl=1) +
                     mh(2) + ustr('/old') + i32(-1) + mh(5) + ustr('/m') + buf(b'v') + i32(0) +
                     mh(13) + ustr('/m') + i32(0) + DONE),
    'multi-empty': C + req(17, 14, DONE),
    'multi-done-odd': C + req(18, 14, mh(2) + ustr('/x') + i32(1) + mh(0, True, 0)),
    'multi-many': C + req(31, 14, b''.join(mh(2) + ustr('/d%d' % i) + i32(i) for i in range(20)) +
                          DONE),
    'multi-too-many': C + req(32, 22, b''.join(mh(4) + ustr('/g%d' % i) + boolean(False)
                                               for i in range(40)) + DONE),
    'multi-read': C + req(19, 22, mh(8) + ustr('/') + boolean(False) + mh(4) + ustr('/a') +
                          boolean(False) + DONE),
    'multi-bad-op': C + req(20, 14, mh(4) + ustr('/a') + boolean(False) + DONE),
    'reconfig': C + req(21, 16, ustr(None) + ustr(None) + ustr('server.1=h:1:2') + i64(-1)),
    'check-watches': C + req(22, 17, ustr('/app') + i32(3)),
    'remove-watches': C + req(23, 18, ustr('/app') + i32(1)),
    'delete-container': C + req(24, 20, ustr('/box')),
    'auth': C + req(-4, 100, i32(0) + ustr('digest') + buf(b'user:password')),
    'set-watches': C + req(-8, 101, i64(0x100000005) + vec(['/a', '/b'], ustr) + vec([], ustr) +
                           vec(['/'], ustr)),
    'set-watches2': C + req(-8, 105, i64(9) + vec(['/a'], ustr) + vec(None, ustr) + vec([], ustr) +
                            vec(['/p'], ustr) + vec(['/r', '/r/s'], ustr)),
    'sasl': C + req(25, 102, buf(b'token')),
    'get-ephemerals': C + req(26, 103, ustr('/')),
    'get-all-children-number': C + req(27, 104, ustr('/app')),
    'add-watch': C + req(28, 106, ustr('/app') + i32(1)),
    'who-am-i': C + req(29, 107),
    'close-session': C + req(30, -11),
    'session': C + req(1, 1, create('/s', b'x', flags=1)) + req(2, 4, ustr('/s') + boolean(True)) +
               req(-2, 11) + req(3, 5, ustr('/s') + buf(b'y') + i32(0)) + req(4, -11),
    # paths the server must refuse or accept
    'path-null': C + req(1, 4, ustr(None) + boolean(False)),
    'path-empty': C + req(1, 4, ustr('') + boolean(False)),
    'path-utf8': C + req(1, 1, create('/caf\u00e9/\u4e2d\u6587/\uffef')),
    'path-dots': C + req(1, 4, ustr('/a/../b/./c/...') + boolean(False)),
    'path-bad-utf8': C + req(1, 4, ustr(b'/\xc0\xaf/\xed\xa0\x80/\xf0\x9f\x98\x80') + boolean(False)),
    'path-controls': C + req(1, 4, ustr(b'/a\x00b/\x7f/\xc2\x85') + boolean(False)),
    # malformed frames
    'bad-bool': C + req(1, 4, ustr('/a') + b'\x02'),
    'bad-length': C + req(1, 4, i32(-2) + b'/a' + boolean(False)),
    'huge-length': C + req(1, 4, i32(0x7fffffff) + b'/a' + boolean(False)),
    'huge-count': C + req(1, 7, ustr('/a') + i32(0x10000000) + i32(0)),
    'negative-count': C + req(1, 101, i64(0) + i32(-5)),
    'truncated-frame': C + i32(100) + i32(1) + i32(4),
    'negative-frame': C + i32(-1) + i32(1) + i32(4),
    'multi-no-done': C + req(1, 14, mh(2) + ustr('/x') + i32(1)),
    # frames laid out as replies, for the client-side decoders
    'reply-get-data': C + frame(i32(8) + i64(0x100000003) + i32(0) + buf(b'data') + stat(100)),
    'reply-children2': C + frame(i32(14) + i64(4) + i32(0) + vec(['a', 'b', ''], ustr) + stat()),
    'reply-create2': C + frame(i32(2) + i64(5) + i32(0) + ustr('/a0000000001') + stat(7)),
    'reply-acl': C + frame(i32(10) + i64(6) + i32(0) + acls(OPEN) + stat()),
    'reply-notification': C + frame(i32(-1) + i64(-1) + i32(0) + i32(3) + i32(3) + ustr('/app')),
    'reply-error': C + frame(i32(9) + i64(7) + i32(-101)),
    'connect-response': frame(i32(0) + i32(4000) + i64(0x100000001) + buf(b'\x01' * 16) + b'\x00'),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, 'seed-' + name), 'wb') as f:
            f.write(data)
    print('%d seeds in %s' % (len(seeds), out))


if __name__ == '__main__':
    main()
