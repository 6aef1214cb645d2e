#!/usr/bin/env python3
"""Hostile DNS input from inside a lab pod, for test/privileged/mediabot.e2e.test.ts.

Usage: dns-hostile.py SERVER NAME
Sends to SERVER:53 (the pod's DNS server, which the datapath redirects to the agent's DNS
proxy): malformed queries (each followed by a valid query for NAME), a query with two
questions, case variants of NAME, a TCP query split into one-byte segments, two TCP queries
pipelined in one segment, a TCP frame of length 0, and a burst of 200 UDP queries. Prints one
JSON object with what came back; the test judges it. Standard library only.
"""
import json
import random
import socket
import struct
import sys
import time

SERVER, NAME = sys.argv[1], sys.argv[2]
PORT = 53


def header(qid, qdcount, flags=0x0100):
    return struct.pack('>HHHHHH', qid, flags, qdcount, 0, 0, 0)


def encode_name(name):
    out = b''
    for label in name.rstrip('.').split('.'):
        out += bytes([len(label)]) + label.encode()
    return out + b'\x00'


def question(name, qtype=1):
    return encode_name(name) + struct.pack('>HH', qtype, 1)


def query(qid, name, qtype=1):
    return header(qid, 1) + question(name, qtype)


def raw_query(qid, name_bytes):
    return header(qid, 1) + bytes(name_bytes) + b'\x00\x01\x00\x01'


def read_name(msg, off):
    """Offset after a (possibly compressed) name; bounded, for the answers we parse."""
    jumps = 0
    end = None
    while True:
        length = msg[off]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((length & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 20:
                raise ValueError('pointer loop in an answer')
            continue
        if length == 0:
            return end if end is not None else off + 1
        off += 1 + length


def parse(msg):
    """ID, rcode, question count and the A addresses of a response."""
    qid, flags, qd, an, _ns, _ar = struct.unpack('>HHHHHH', msg[:12])
    off = 12
    for _ in range(qd):
        off = read_name(msg, off) + 4
    ips = []
    for _ in range(an):
        off = read_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack('>HHIH', msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    rcodes = {0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED'}
    return {'id': qid, 'rcode': rcodes.get(flags & 0xF, str(flags & 0xF)), 'qdcount': qd, 'ips': sorted(ips)}


def udp_exchange(data, wait=0.5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(wait)
    try:
        s.sendto(data, (SERVER, PORT))
        reply, _ = s.recvfrom(65535)
        return parse(reply)
    except socket.timeout:
        return None
    finally:
        s.close()


def valid(qid):
    """A real query for NAME, retried once (a busy machine must not look like a dead proxy)."""
    for _ in range(2):
        r = udp_exchange(query(qid, NAME), wait=3)
        if r is not None:
            return r
    return None


def label(s):
    return [len(s)] + list(s.encode())


api = label('api') + label('github') + label('com') + [0]
as_response = bytearray(raw_query(10, api))
as_response[2:4] = b'\x81\x00'

MALFORMED = [
    ('shorter than a header', bytes([0x12, 0x34, 0x01])),
    ('a compression pointer to itself (loop)', raw_query(1, [0xC0, 12])),
    ('two pointers pointing at each other (loop)', header(2, 1) + bytes([0xC0, 14, 0xC0, 12, 0, 1, 0, 1])),
    ('a forward pointer', raw_query(3, [0xC0, 40] + [0] * 30)),
    ('a label running past the end', raw_query(5, [40, 97, 98, 99])),
    ('a name longer than 255 bytes', raw_query(6, label('a' * 63) * 5 + [0])),
    ('a label longer than 63 bytes (0x40 label type)', raw_query(7, [0x41] + [97] * 65 + [0])),
    ('a question count larger than the message', header(8, 3) + bytes(label('api') + [0, 0, 1, 0, 1])),
    ('a response sent as a query', bytes(as_response)),
]

result = {'malformed': [], 'twoQuestions': None, 'caseVariants': [], 'tcpSplit': None, 'tcpPipelined': [],
          'tcpZeroFrame': None, 'burst': None, 'afterBurst': None}

for i, (what, data) in enumerate(MALFORMED):
    reply = udp_exchange(data)
    nxt = valid(1000 + i)
    result['malformed'].append({'case': what, 'reply': reply, 'next': nxt})

two = header(20, 2) + question(NAME) + question('github.com')
result['twoQuestions'] = udp_exchange(two, wait=3)

for i, variant in enumerate([NAME.upper(), NAME.title(), ''.join(c.upper() if k % 2 else c for k, c in enumerate(NAME))]):
    r = udp_exchange(query(30 + i, variant), wait=3)
    result['caseVariants'].append({'name': variant, 'reply': r})


def tcp_connect():
    s = socket.create_connection((SERVER, PORT), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_frame(s):
    def exactly(n):
        buf = b''
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError('closed')
            buf += chunk
        return buf
    (length,) = struct.unpack('>H', exactly(2))
    return parse(exactly(length))


# One query, one byte per segment (TCP_NODELAY and a pause between the writes).
s = tcp_connect()
framed = struct.pack('>H', len(query(40, NAME))) + query(40, NAME)
for b in framed:
    s.send(bytes([b]))
    time.sleep(0.005)
result['tcpSplit'] = read_frame(s)
s.close()

# Two queries in one segment, then a third split across two segments.
s = tcp_connect()
q1, q2, q3 = query(41, NAME), query(42, 'github.com'), query(43, NAME)
s.send(struct.pack('>H', len(q1)) + q1 + struct.pack('>H', len(q2)) + q2 + struct.pack('>H', len(q3)) + q3[:5])
time.sleep(0.05)
s.send(q3[5:])
result['tcpPipelined'] = sorted([read_frame(s) for _ in range(3)], key=lambda r: r['id'])
s.close()

# A frame of length 0: the framing is broken, the proxy closes the connection.
s = tcp_connect()
s.send(b'\x00\x00')
s.settimeout(3)
try:
    closed = s.recv(10) == b''
except (ConnectionError, socket.timeout) as err:
    closed = isinstance(err, ConnectionError)
result['tcpZeroFrame'] = {'closed': closed}
s.close()

# 200 queries from one socket as fast as it can send them, then collect the answers.
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
ids = random.sample(range(1000, 60000), 200)
for qid in ids:
    s.sendto(query(qid, NAME), (SERVER, PORT))
answers = {}
deadline = time.time() + 10
s.settimeout(0.5)
while len(answers) < len(ids) and time.time() < deadline:
    try:
        reply, _ = s.recvfrom(65535)
    except socket.timeout:
        continue
    r = parse(reply)
    answers[r['id']] = r
s.close()
wanted = set(ids)
result['burst'] = {
    'sent': len(ids),
    'answered': len([i for i in answers if i in wanted]),
    'rcodes': sorted({r['rcode'] for r in answers.values()}),
    'ipSets': sorted({','.join(r['ips']) for r in answers.values()}),
}
result['afterBurst'] = valid(50)

print(json.dumps(result))
