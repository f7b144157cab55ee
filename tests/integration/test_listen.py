"""Listeners: the production config listens on 0.0.0.0:25 and [::]:25
together, which needs the IPv6 socket to be IPv6-only."""
import socket

import pytest

from postern_test import free_port, has_ipv6_loopback


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no ::1")
def test_any_ipv4_and_any_ipv6_on_one_port(make_server):
    port = free_port()
    srv = make_server(start=False, listen=f"0.0.0.0:{port}, [::]:{port}")
    srv.port = port
    srv.start()
    for family, host in ((socket.AF_INET, "127.0.0.1"),
                         (socket.AF_INET6, "::1")):
        with socket.socket(family) as s:
            s.settimeout(10)
            s.connect((host, port))
            assert s.recv(512).startswith(b"220 "), host
