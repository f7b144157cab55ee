"""REQUIRETLS and the TLS-Required header field (RFC 8689), the receiving
side, against the real server with Python's smtplib.

What a client sees: EHLO offers REQUIRETLS only once the session is TLS
(after STARTTLS); MAIL FROM with REQUIRETLS gets 250 there and 555 5.7.30
in clear text.  What the message carries: the flags MSG_F_REQUIRETLS (4)
and MSG_F_TLS_OPTIONAL (8) of src/spool/msg.h, seen two ways - the
`requiretls=yes` / `tls_required=no` words of the ev=queued log line, and
the envelope's `flags N` line inside the spool segment (the record
docs/design/spool.md describes), read again after a kill -9 and a
restart that recovered the message.
"""
import re
import smtplib
import struct

from postern_test import insecure_tls_context, poll

RCPT = "alice@example.test"
REC_HEADER = struct.Struct("<IIQQII")  # spool/record.h struct spool_rec_hdr
REC_MAGIC = 0x314D5350
F_REQUIRETLS = 1 << 2
F_TLS_OPTIONAL = 1 << 3


def tls_sections(tls_files):
    d, _ = tls_files
    return {"tls": {"cert": str(d / "cert.pem"), "key": str(d / "key.pem")}}


def message(header="", body="hello\r\n"):
    return f"Subject: rtls\r\n{header}\r\n{body}".encode()


def qid_of(text):
    """The queue id in smtplib's text of a 250 after the text."""
    m = re.fullmatch(r"2\.0\.0 Ok: queued as ([0-9A-F]{16})", text.decode())
    assert m, text
    return m.group(1)


def open_smtp(srv, tls):
    """An smtplib session after EHLO, upgraded with STARTTLS when tls."""
    s = smtplib.SMTP(srv.host, srv.port, timeout=15)
    s.ehlo("client.test")
    if tls:
        s.starttls(context=insecure_tls_context())
        s.ehlo("client.test")
    return s


def send(srv, tls, options=(), header="", body="hello\r\n"):
    """One message to alice; returns its queue id."""
    s = open_smtp(srv, tls)
    try:
        code, text = s.mail("s@x.test", list(options))
        assert code == 250, (code, text)
        assert s.rcpt(RCPT)[0] == 250
        code, text = s.data(message(header, body))
        assert code == 250, (code, text)
        return qid_of(text)
    finally:
        s.quit()


def queued_line(srv, qid):
    srv.wait_log(rf"ev=queued qid={qid} ")
    [line] = [x for x in srv.log().splitlines() if f"ev=queued qid={qid} " in x]
    return line


def spool_flags(srv):
    """{queue id: flags} of every record in the spool's segments."""
    found = {}
    for seg in sorted(srv.spool.glob("[0-9]" * 8 + ".log")):
        buf, off = seg.read_bytes(), 0
        while off + REC_HEADER.size <= len(buf):
            magic, env_len, data_len, qid, _, _ = \
                REC_HEADER.unpack_from(buf, off)
            if magic != REC_MAGIC:
                break  # zeros written ahead
            env = buf[off + REC_HEADER.size:off + REC_HEADER.size + env_len]
            m = re.search(rb"^flags (\d+)$", env, re.M)
            found[f"{qid:016X}"] = int(m.group(1))
            off += REC_HEADER.size + env_len + data_len
    return found


def test_ehlo_offers_requiretls_only_after_starttls(make_server, tls_files):
    srv = make_server(**tls_sections(tls_files))
    s = smtplib.SMTP(srv.host, srv.port, timeout=15)
    s.ehlo("client.test")
    assert s.has_extn("starttls")
    assert not s.has_extn("requiretls")
    s.starttls(context=insecure_tls_context())
    s.ehlo("client.test")
    assert s.has_extn("requiretls")
    assert s.esmtp_features["requiretls"] == ""
    s.quit()


def test_mail_with_requiretls_in_clear_text_gets_555_5_7_30(make_server,
                                                            tls_files):
    srv = make_server(**tls_sections(tls_files))
    s = open_smtp(srv, tls=False)
    code, text = s.mail("s@x.test", ["REQUIRETLS"])
    assert (code, text.decode().split()[0]) == (555, "5.7.30")
    srv.wait_log(r"cmd=MAIL reply=555 enh=5\.7\.30 "
                 r"reason=requiretls_needs_tls")
    # The same transaction without it goes through on that session.
    assert s.mail("s@x.test")[0] == 250
    s.quit()


def test_requiretls_over_starttls_is_queued_with_the_flag(make_server,
                                                          tls_files):
    srv = make_server(**tls_sections(tls_files))
    qid = send(srv, tls=True, options=["REQUIRETLS"])
    assert "requiretls=yes" in queued_line(srv, qid)
    [f] = srv.wait_messages(RCPT, 1)
    assert b"rtls" in f.read_bytes()


def test_requiretls_flag_survives_kill_and_restart(make_server, tls_files):
    """Delivery is blocked (a file where the Maildir tree must go), so the
    message stays in the spool across a kill -9; the restart recovers it
    with its flags line, and once unblocked it is delivered."""
    srv = make_server(start=False, **tls_sections(tls_files))
    blocker = srv.dir / "mail"
    blocker.write_text("not a directory\n")
    srv.start()
    qid = send(srv, tls=True, options=["REQUIRETLS"])
    srv.wait_log(rf"ev=delivery_failed qid={qid}")
    assert spool_flags(srv)[qid] & F_REQUIRETLS
    srv.kill9()
    srv.start()
    srv.wait_log(r"ev=recovered messages=1")
    srv.wait_log(rf"ev=delivery_failed qid={qid}", count=2)
    assert spool_flags(srv)[qid] & F_REQUIRETLS
    srv.stop()
    blocker.unlink()
    srv.start()
    srv.wait_messages(RCPT, 1)


def test_tls_required_no_header_sets_tls_optional(make_server, tls_files):
    """Name and value in any case, folded or padded: the flag; in clear
    text too, since the header field asks for less, not more."""
    srv = make_server(start=False, **tls_sections(tls_files))
    blocker = srv.dir / "mail"
    blocker.write_text("not a directory\n")  # keep the records queued
    srv.start()
    qid = send(srv, tls=False, header="tls-required:\r\n\t nO  \r\n")
    line = queued_line(srv, qid)
    assert "tls_required=no" in line and "requiretls" not in line
    srv.wait_log(rf"ev=delivery_failed qid={qid}")
    flags = spool_flags(srv)[qid]
    assert flags & F_TLS_OPTIONAL and not flags & F_REQUIRETLS


def test_tls_required_no_is_ignored_with_requiretls(make_server, tls_files):
    """RFC 8689 4.1: REQUIRETLS on MAIL wins; the field stays in the text
    (it may be relayed on)."""
    srv = make_server(**tls_sections(tls_files))
    qid = send(srv, tls=True, options=["REQUIRETLS"],
               header="TLS-Required: No\r\n")
    line = queued_line(srv, qid)
    assert "requiretls=yes" in line and "tls_required" not in line
    [f] = srv.wait_messages(RCPT, 1)
    assert b"TLS-Required: No" in f.read_bytes()


def test_tls_required_elsewhere_sets_nothing(make_server, tls_files):
    """Only the header counts, and only the value No."""
    srv = make_server(**tls_sections(tls_files))
    in_body = send(srv, tls=True, body="TLS-Required: No\r\n")
    other = send(srv, tls=True, header="TLS-Required: Yes\r\n")
    longer = send(srv, tls=True, header="TLS-Required-X: No\r\n")
    for qid in (in_body, other, longer):
        line = queued_line(srv, qid)
        assert "tls_required" not in line and "requiretls" not in line
    srv.wait_messages(RCPT, 3)


def test_bdat_with_requiretls_and_header_over_starttls(make_server,
                                                       tls_files):
    """The flag comes from MAIL, whether the text comes by DATA or BDAT."""
    srv = make_server(start=False, **tls_sections(tls_files))
    blocker = srv.dir / "mail"
    blocker.write_text("not a directory\n")
    srv.start()
    s = open_smtp(srv, tls=True)
    assert s.mail("s@x.test", ["REQUIRETLS"])[0] == 250
    assert s.rcpt(RCPT)[0] == 250
    text = message("TLS-Required: no\r\n")
    s.send(f"BDAT {len(text)} LAST\r\n".encode() + text)
    code, reply = s.getreply()
    assert code == 250, (code, reply)
    qid = qid_of(reply)
    s.quit()
    srv.wait_log(rf"ev=delivery_failed qid={qid}")
    assert poll(lambda: qid in spool_flags(srv), what="the record")
    assert spool_flags(srv)[qid] == F_REQUIRETLS
