"""What leaves for a peer is text it can take (issue 18, items 2 and 6;
src/proto/mime7.c, called from src/outbound/client_txn.c): no line over
998 octets (RFC 5322 2.1.1, RFC 5321 4.5.3.1.6) and, for a peer that did
not offer 8BITMIME, no 8-bit octet (RFC 6152 3): each part that needs it
becomes quoted-printable, the rest arrives as it was.

Each test sends through a real postern to the scripted peer of
tests/pylib/smtp_peer.py and reads what the peer received with Python's
email package: it parses, every part decodes to the octets that were
sent, every header unfolds to what it was.  The cases that are plain
transcripts (one 8-bit part converted, an 8-bit header bounced) are in
tests/peer/.
"""
import base64
import re
import subprocess

import pytest

from smtp_peer import (ALICE, DEFAULT_CAPS, Dsn, Peer, outbound_server,
                       read_message, submit)
from postern_test import POSTERN

T = 40.0
BOB = "bob@remote.test"
NO_8BITMIME = [c for c in DEFAULT_CAPS if c != "8BITMIME"]


@pytest.fixture
def peers():
    started = []

    def make(**kw):
        p = Peer(**kw).start()
        started.append(p)
        return p
    yield make
    for p in started:
        p.stop()
    for p in started:
        p.assert_clean()


def lines_of(data):
    return data.split(b"\r\n")


def assert_fit(data, is_7bit):
    """No line over 998 octets; no 8-bit octet for a 7-bit peer."""
    long = [len(x) for x in lines_of(data) if len(x) > 998]
    assert not long, f"lines over 998 octets: {long}"
    if is_7bit:
        bad = [i for i, b in enumerate(data) if b >= 0x80]
        assert not bad, f"8-bit octets at {bad[:5]}"


def unfolded_headers(data):
    """[(name lower, value unfolded)] of the top header section."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    head = re.sub(r"\r\n(?=[ \t])", "", head)
    out = []
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        out.append((name.lower(), value))
    return out


def leaves(msg):
    """[(content type, decoded octets with LF line ends)] in order; a
    message/rfc822 part is looked into."""
    out = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_type() == \
                "message/rfc822":
            continue
        payload = part.get_payload(decode=True)
        out.append((part.get_content_type(),
                    payload.replace(b"\r\n", b"\n")))
    return out


def parse(data):
    import email
    import email.policy
    return email.message_from_bytes(data, policy=email.policy.default)


def assert_same_content(sent, got):
    """got (what the peer received) holds sent's parts, decoded alike,
    and each of sent's header fields unfolded alike."""
    a, b = parse(sent), parse(got)
    assert not b.defects, b.defects
    for part in b.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    assert leaves(a) == leaves(b)
    got_heads = unfolded_headers(got)
    for h in unfolded_headers(sent):
        if h[0] != "content-transfer-encoding":
            assert h in got_heads, h


def mixed_8bit_message():
    text = "Grüße aus Köln,\r\n-- \r\nAlice\r\n".encode()
    html = ("<html><body><p>" + "Schöne Grüße " * 60 +
            "</p></body></html>\r\n").encode()
    inner = ("Subject: forwarded\r\nFrom: <carol@example.test>\r\n\r\n"
             "Ça va très bien.\r\n").encode()
    blob = bytes(range(256)) * 4
    return (b"From: <alice@example.test>\r\nTo: <bob@remote.test>\r\n"
            b"Subject: mixed 8bit\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"=_outer\"\r\n\r\n"
            b"This is a message in MIME format.\r\n"
            b"--=_outer\r\n"
            b"Content-Type: multipart/alternative; boundary=\"=_alt\"\r\n\r\n"
            b"--=_alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text +
            b"--=_alt\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + html +
            b"--=_alt--\r\n"
            b"--=_outer\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" +
            base64.encodebytes(blob).replace(b"\n", b"\r\n") +
            b"--=_outer\r\nContent-Type: text/plain; charset=us-ascii\r\n"
            b"\r\nplain ascii stays as it is\r\n"
            b"--=_outer\r\nContent-Type: message/rfc822\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + inner +
            b"--=_outer--\r\n")


def test_8bit_multipart_to_a_peer_without_8bitmime_is_converted(
        make_server, peers):
    p = peers(caps=NO_8BITMIME)
    srv = outbound_server(make_server, routes={"remote.test": p.address})
    msg = mixed_8bit_message()
    submit(srv, [BOB], msg, mail_options=["BODY=8BITMIME"])
    [t] = p.wait_messages(1, T)
    assert "BODY" not in t.mail_params, t.mail_params
    assert int(t.mail_params["SIZE"]) == len(t.data)
    assert_fit(t.data, is_7bit=True)
    assert_same_content(msg, t.data)
    # Only the parts that had 8-bit text changed their encoding.
    assert t.data.count(b"Content-Transfer-Encoding: quoted-printable") == 3
    assert b"\r\nplain ascii stays as it is\r\n--=_outer\r\n" in t.data
    assert base64.encodebytes(bytes(range(256)) * 4).replace(
        b"\n", b"\r\n") in t.data
    assert b"Content-Type: message/rfc822\r\n" \
        b"Content-Transfer-Encoding: 7bit\r\n" in t.data
    srv.wait_log(r"ev=sent qid=\S+ rcpt=bob@remote\.test")
    assert not srv.message_files(ALICE), "a bounce came"


def test_8bit_goes_as_it_is_to_a_peer_with_8bitmime(make_server, peers):
    p = peers()
    srv = outbound_server(make_server, routes={"remote.test": p.address})
    msg = mixed_8bit_message()
    submit(srv, [BOB], msg, mail_options=["BODY=8BITMIME"])
    [t] = p.wait_messages(1, T)
    assert t.mail_params.get("BODY") == "8BITMIME"
    assert t.data.endswith(msg), "the text was changed"


def send(srv, sender, rcpts, data):
    r = subprocess.run([POSTERN, "send", "-c", str(srv.conf), "-f", sender,
                        *rcpts], input=data, capture_output=True, timeout=60)
    assert r.returncode == 0, r


@pytest.mark.parametrize("caps", [DEFAULT_CAPS, NO_8BITMIME],
                         ids=["8bitmime", "7bit"])
def test_long_lines_from_postern_send_are_folded_and_encoded(
        make_server, peers, caps):
    # The HTML mail of issue 18: one body line of 5,000 octets and a
    # References field of 200 ids; not MIME at all.
    p = peers(caps=caps)
    srv = outbound_server(make_server, routes={"remote.test": p.address})
    refs = " ".join(f"<{i}.{'x' * 12}@example.test>" for i in range(200))
    body = ("<p>" + "Grüße, " * 700 + "</p>\n").encode()
    data = (f"Subject: long lines\nTo: <{BOB}>\nReferences: {refs}\n\n"
            ).encode() + body + b"short\n"
    assert max(len(x) for x in data.split(b"\n")) > 4000
    send(srv, ALICE, [BOB], data)
    [t] = p.wait_messages(1, T)
    assert_fit(t.data, is_7bit="8BITMIME" not in caps)
    got = parse(t.data)
    assert got["References"] == refs
    assert got.get_content_type() == "text/plain"
    assert got.get_content_charset() == "utf-8"
    assert got["Content-Transfer-Encoding"] == "quoted-printable"
    assert got.get_payload(decode=True).replace(b"\r\n", b"\n") == \
        body + b"short\n"
    assert int(t.mail_params["SIZE"]) == len(t.data)


def test_a_bounce_of_8bit_mail_reaches_a_7bit_peer_converted(
        make_server, peers):
    # Bounces take the same path: the notice about an 8-bit message,
    # with its 8-bit Subject in the part for people and in the returned
    # header, goes to a sender whose server lacks 8BITMIME.
    refuser = peers()
    refuser.set_rcpt(BOB, ["550 5.1.1 No such user"])
    home = peers(caps=NO_8BITMIME)
    srv = outbound_server(make_server, routes={"remote.test":
                                               refuser.address,
                                               "seven.test": home.address})
    sender = "carol@seven.test"
    send(srv, sender, [BOB], "Subject: Grüße\nTo: <bob@remote.test>\n\n"
         "Schöne Grüße\n".encode())
    [t] = home.wait_messages(1, T)
    assert t.mail_from == "" and t.accepted_rcpts == [sender]
    assert_fit(t.data, is_7bit=True)
    d = Dsn(t.message())
    assert d.recipient(BOB)["status"] == "5.1.1"
    assert "Grüße" in d.human_text()
    assert "Grüße".encode() in d.original_text()


def test_8bit_header_cannot_go_to_a_7bit_peer_and_bounces(make_server,
                                                            peers):
    p = peers(caps=NO_8BITMIME)
    srv = outbound_server(make_server, routes={"remote.test": p.address})
    send(srv, ALICE, [BOB], "Subject: Grüße\n\nGrüße\n".encode())
    [b] = [read_message(f) for f in srv.wait_messages(ALICE, 1, T)]
    r = Dsn(b).recipient(BOB)
    assert (r["action"], r["status"]) == ("failed", "5.6.3")
    assert "8BITMIME" in Dsn(b).human_text()
    assert p.transactions == []


def test_long_lines_that_cannot_be_encoded_go_as_they_are(make_server,
                                                          peers):
    # A multipart whose boundary never appears cannot be re-encoded part
    # by part; a 3,000-octet line then goes as it is (as Postfix sends
    # it), not bounced: most servers take it.
    p = peers()
    srv = outbound_server(make_server, routes={"remote.test": p.address})
    line = b"z" * 3000
    data = (b"Subject: odd\nMIME-Version: 1.0\nContent-Type: multipart/mixed;"
            b" boundary=\"never-used\"\n\n" + line + b"\n")
    send(srv, ALICE, [BOB], data)
    [t] = p.wait_messages(1, T)
    assert line in t.data.split(b"\r\n"), "the line was changed"
    assert srv.wait_log(r"ev=text_sent_unconverted")
