"""A tiny authoritative DNS server for the email tests, built on dnslib (a server nobody here
wrote): it answers the SPF records and DKIM keys the hub's own sender checks look up.

    python dns_server.py RECORDS

RECORDS is a JSON list of [name, type, value] (type TXT, A, AAAA or MX; an MX value is
"preference host"). Any other name is NXDOMAIN. It listens on 127.0.0.1, UDP and TCP on the
same free port, prints "READY <port>" once it answers, and exits when its stdin closes.
"""

import json
import socket
import sys

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def rdata(rtype, value):
    if rtype == "TXT":
        # One TXT record is a list of strings of at most 255 bytes each (RFC 1035 §3.3.14).
        raw = value.encode()
        return TXT([raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""])
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "MX":
        preference, host = value.split()
        return MX(host, int(preference))
    raise ValueError(f"unsupported record type {rtype}")


class Table(BaseResolver):
    def __init__(self, records):
        self.records = [(n.rstrip(".").lower(), t.upper(), v) for n, t, v in records]

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        known = False
        for name, rtype, value in self.records:
            if name != qname:
                continue
            known = True
            if rtype == qtype:
                reply.add_answer(
                    RR(request.q.qname, getattr(QTYPE, rtype), rdata=rdata(rtype, value), ttl=60)
                )
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def free_port():
    """A port free for both UDP and TCP (the resolver falls back to TCP for large answers)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def main():
    records = json.loads(sys.argv[1])
    resolver = Table(records)
    logger = DNSLogger(logf=lambda s: None)
    for _ in range(10):
        port = free_port()
        try:
            servers = [
                DNSServer(resolver, address="127.0.0.1", port=port, logger=logger),
                DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=logger),
            ]
            break
        except OSError:
            continue
    else:
        raise RuntimeError("could not listen")
    for server in servers:
        server.start_thread()
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
