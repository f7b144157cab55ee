#!/usr/bin/env python3
"""seed_session.py - the seeds of fuzz_session from the transcripts.

Usage: seed_session.py OUTDIR   (`make fuzz-seeds`)

Each connection of each tests/transcripts/*.smtp file becomes one seed:
what its client sends (`C:` lines with CRLF, `R:` bytes, expanded as the
driver expands them), with a 0xff octet wherever the transcript reads a
reply before sending more, in fuzz_session.c's input format: byte 0 the
flags (1 submission, 2 early talker, 4 STARTTLS done by the harness),
byte 1 the piece seed (0: each part written whole).  Connections on the
smtps listener are left out (the harness speaks TLS only after STARTTLS).
The seeds are committed; run this again when the transcripts change.
"""
import codecs
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRANSCRIPTS = HERE.parent / "transcripts"
REPEAT = re.compile(r"\$\{(.)\*(\d+)\}")
WAIT_MARK = b"\xff"
F_SUBMISSION, F_EARLY, F_TLS = 1, 2, 4


def expand(text):
    """${c*N}: N copies of c (the driver's rule; ${VERSION} is never sent)."""
    return REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), text)


class Conn:
    def __init__(self, kind):
        self.kind = kind
        self.data = b""
        self.flags = F_SUBMISSION if kind == "submission" else 0
        self.has_reply = False  # an S line was read on it
        self.must_wait = False  # sent since the last S line

    def send(self, octets):
        if not self.has_reply:
            self.flags |= F_EARLY
        self.data += octets
        self.must_wait = True

    def reply(self):
        if self.must_wait:
            self.data += WAIT_MARK
        self.must_wait = False
        self.has_reply = True


def seeds_of(path):
    """Yields (name, octets) for each connection of one transcript."""
    conns = {"main": Conn("smtp")}
    order = ["main"]
    cur = conns["main"]
    for raw in path.read_text(encoding="utf-8").split("\n"):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        word = line.split()
        if word[0] == "CONNECT":
            name = word[1]
            conns[name] = cur = Conn(word[2] if len(word) > 2 else "smtp")
            order.append(name)
        elif word[0] == "USE":
            cur = conns[word[1]]
        elif word == ["STARTTLS"]:
            cur.flags |= F_TLS
        elif line.startswith("C:"):
            val = line[2:]
            val = val[1:] if val.startswith(" ") else val
            cur.send(expand(val).encode() + b"\r\n")
        elif line.startswith("R:"):
            val = line[2:]
            val = val[1:] if val.startswith(" ") else val
            cur.send(codecs.escape_decode(expand(val).encode())[0])
        elif re.match(r"S[~/]?:", line):
            cur.reply()
    for name in order:
        c = conns[name]
        if c.kind == "smtps" or not c.data:
            continue
        suffix = "" if name == "main" else "_" + name
        yield path.stem + suffix, bytes([c.flags, 0]) + c.data


def main():
    if len(sys.argv) != 2:
        print("usage: seed_session.py OUTDIR", file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(TRANSCRIPTS.glob("*.smtp")):
        for name, octets in seeds_of(path):
            (out / name).write_bytes(octets)
            n += 1
    print(f"seed_session: {n} seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
