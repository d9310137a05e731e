#!/usr/bin/env python3
"""Writes the seed inputs of the ZAB peer-message fuzzer (fuzz_peer.c) into
corpus-peer/: scripts that take the core through election, joining a
leader, leading a follower to an established epoch with proposals, and
observing. The protobuf encoding is written here from peer.proto alone.
Rerunning this rewrites the seeds only.

    tests/fuzz/mkcorpus_peer.py [DIR]
"""
import os
import struct
import sys


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    return varint(num << 3 | wire) + payload


def u(num, v):
    return field(num, 0, varint(v)) if v else b""


def sub(num, body):
    return field(num, 2, varint(len(body)) + body)


def msg(body_num, body, epoch=0, nonce=0):
    return u(2, epoch) + u(3, nonce) + sub(body_num, body)


LOOKING, FOLLOWING, LEADING = 0, 1, 2
VOTE, FINFO, LINFO, ACKEPOCH, SYNCSTART, PROPOSAL, COMMIT, NEWLEADER, ACK, UPTODATE, PING = (
    10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)


def vote(leader, zxid, peer_epoch, clock, state):
    return msg(VOTE, u(1, leader) + u(2, zxid) + u(3, peer_epoch) + u(4, clock) + u(5, state))


def frame(frm, m):
    return bytes([0, frm]) + struct.pack(">H", len(m)) + m


def tick(ms):
    return bytes([1, ms // 8])


APPEND_DONE = bytes([3])
NONCE = 1  # the harness puts the core's current nonce in its place


def z(epoch, n):
    return epoch << 32 | n


def lead():
    """Core 2 (a voter) is elected by 1 and 3, leads 1 to an established
    epoch 1 and proposes, with acks and a read round."""
    s = b"\x00"
    s += frame(1, vote(2, 0, 0, 1, LOOKING)) + frame(3, vote(2, 0, 0, 1, LOOKING))
    s += tick(80)
    s += frame(1, msg(FINFO, u(1, 0), nonce=7))
    s += frame(1, msg(ACKEPOCH, u(1, 0), epoch=1, nonce=7))
    s += frame(1, msg(ACK, u(1, 0), epoch=1, nonce=7))
    for i in range(1, 4):
        s += bytes([5, 3]) + b"txn" + APPEND_DONE
        s += frame(1, msg(ACK, u(1, z(1, i)), epoch=1, nonce=7))
    s += bytes([6]) + frame(1, msg(PING, u(1, z(1, 3)) + u(2, 1), epoch=1, nonce=7))
    s += tick(200) + bytes([2, 1]) + tick(800)
    return s


def follow(observer):
    """The core joins 3, which leads 1 in epoch 2: LeaderInfo, a DIFF sync
    whose checkpoint opens epoch 1 for two proposals, NewLeader, UpToDate,
    then a proposal of epoch 2 and its commit."""
    e = 2
    s = b"\x01" if observer else b"\x00"
    s += frame(1, vote(3, 0, e, 1, FOLLOWING)) + frame(3, vote(3, 0, e, 1, LEADING))
    s += frame(3, msg(LINFO, u(1, e), epoch=e, nonce=NONCE))
    s += frame(3, msg(SYNCSTART, u(1, 0) + u(5, 0), epoch=e, nonce=NONCE))
    s += frame(3, msg(SYNCSTART, u(1, 0) + u(4, z(1, 1)), epoch=e, nonce=NONCE))
    s += frame(3, msg(PROPOSAL, u(1, z(1, 1)) + sub(2, b"a"), epoch=e, nonce=NONCE))
    s += frame(3, msg(PROPOSAL, u(1, z(1, 2)) + sub(2, b"b"), epoch=e, nonce=NONCE))
    s += frame(3, msg(NEWLEADER, u(1, z(1, 2)), epoch=e, nonce=NONCE))
    s += APPEND_DONE + APPEND_DONE
    s += frame(3, msg(UPTODATE, u(1, z(1, 2)), epoch=e, nonce=NONCE))
    s += frame(3, msg(PROPOSAL, u(1, z(e, 1)) + sub(2, b"c"), epoch=e, nonce=NONCE))
    s += APPEND_DONE
    s += frame(3, msg(COMMIT, u(1, z(e, 1)), epoch=e, nonce=NONCE))
    s += frame(3, msg(PING, u(1, z(e, 1)) + u(2, 2), epoch=e, nonce=NONCE))
    s += tick(400) + bytes([2, 3]) + tick(100)
    return s


def snap():
    """The core is sent a SNAP (a snapshot as of (1,5)) by leader 3."""
    s = b"\x00"
    s += frame(1, vote(3, 0, 1, 1, FOLLOWING)) + frame(3, vote(3, 0, 1, 1, LEADING))
    s += frame(3, msg(LINFO, u(1, 1), epoch=1, nonce=NONCE))
    s += frame(3, msg(SYNCSTART, u(1, 2) + sub(3, b"x") + u(4, z(1, 5)), epoch=1, nonce=NONCE))
    s += frame(3, msg(NEWLEADER, u(1, z(1, 5)), epoch=1, nonce=NONCE))
    s += bytes([4, 0])
    s += frame(3, msg(UPTODATE, u(1, z(1, 5)), epoch=1, nonce=NONCE))
    return s


def hello():
    body = u(1, 3) + field(2, 2, varint(3) + b"\x01\x02\x03") + field(3, 2, varint(1) + b"\x04")
    return b"\x00" + bytes([7, 3]) + struct.pack(">H", len(body)) + body


SEEDS = {
    "seed-lead": lead(),
    "seed-follow": follow(False),
    "seed-observe": follow(True),
    "seed-snap": snap(),
    "seed-hello": hello(),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "corpus-peer")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
