#!/usr/bin/env python3
"""Slow-client measurement against a running Charter listener (loopback only).

Opens N sockets from one loopback address (default 127.0.0.2), each sending half a request
head, then measures from another address (127.0.0.1):
  - how many of the half-open sockets the server still holds after a second,
  - how long a normal GET /healthz takes while they are open,
  - how long until the server has closed every one of them.

Usage: python3 bench/slow_clients.py HOST:PORT [N] [--from 127.0.0.2]
Bounded: N sockets at most, and it gives up after 120 s.
"""
import socket
import sys
import time


def healthz(host, port):
    t = time.monotonic()
    s = socket.create_connection((host, port), timeout=30)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.split(b" ", 2)[1].decode(), time.monotonic() - t


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    source = "127.0.0.2"
    if "--from" in sys.argv:
        source = sys.argv[sys.argv.index("--from") + 1]
        args = [a for a in args if a != source]
    host, port = args[0].rsplit(":", 1)
    port = int(port)
    n = int(args[1]) if len(args) > 1 else 4100
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        sys.exit("loopback targets only")

    started = time.monotonic()
    socks, refused = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.settimeout(5)
        try:
            s.connect((host, port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    opened = time.monotonic() - started
    print(f"opened {len(socks)} half-request connections from {source} in {opened:.2f} s ({refused} refused at connect)")

    time.sleep(1)
    held = 0
    for s in socks:
        s.setblocking(False)
        try:
            held += 1 if s.recv(1) else 0
        except BlockingIOError:
            held += 1
        except OSError:
            pass
    print(f"held by the server after 1 s: {held}")

    status, took = healthz(host, port)
    print(f"normal client from 127.0.0.1 while they are open: HTTP {status} in {took * 1000:.1f} ms")

    open_socks = list(socks)
    while open_socks and time.monotonic() - started < 120:
        still = []
        for s in open_socks:
            try:
                if s.recv(1) == b"":
                    s.close()
                    continue
            except BlockingIOError:
                still.append(s)
                continue
            except OSError:
                s.close()
                continue
            still.append(s)
        open_socks = still
        if open_socks:
            time.sleep(0.1)
    print(f"all half-request connections closed by the server {time.monotonic() - started:.2f} s after the first opened ({len(open_socks)} still open)")
    status, took = healthz(host, port)
    print(f"normal client afterwards: HTTP {status} in {took * 1000:.1f} ms")
    for s in open_socks:
        s.close()


if __name__ == "__main__":
    main()
