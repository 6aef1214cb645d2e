#!/usr/bin/env python3
"""A TLS connection held open across an agent restart, for test/privileged/mediabot.e2e.test.ts.

Usage: tls-hold.py IP HOST GO_FILE
Connects to IP:443 and completes the TLS handshake for HOST (lab CA from /etc/ssl), prints
`connected`, waits until GO_FILE exists, then sends one HTTP/1.1 request on the SAME connection
and prints the status line it gets (or `error: …`).
"""
import os
import socket
import ssl
import sys
import time

ip, host, go = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile='/etc/ssl/certs/ca-certificates.crt')
try:
    conn = ctx.wrap_socket(socket.create_connection((ip, 443), timeout=5), server_hostname=host)
    print('connected', flush=True)
    deadline = time.time() + 120
    while not os.path.exists(go) and time.time() < deadline:
        time.sleep(0.05)
    conn.settimeout(5)
    conn.sendall(f'GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n'.encode())
    data = b''
    while b'\r\n' not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.split(b'\r\n', 1)[0].decode() or 'error: closed without an answer', flush=True)
except (OSError, ssl.SSLError) as err:
    print(f'error: {err}', flush=True)
