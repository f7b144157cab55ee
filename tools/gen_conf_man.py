#!/usr/bin/env python3
"""gen_conf_man.py - writes docs/man/postern.conf.5 from src/config/keys.def,
so the manual lists exactly the keys, defaults and limits the code has.
`make man` runs it; `make lint` fails when the page is stale."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROW = re.compile(r'^K\((\w+), (\w+), (\w+), "(.*?)", (\w+), (\w+), ([01]), "(.*)"\)$')


def esc(s):
    return s.replace("\\", "\\e").replace("-", "\\-")


def render():
    out = [
        '.TH POSTERN.CONF 5 "" "postern" "File Formats"',
        ".SH NAME",
        "postern.conf \\- configuration of the postern mail server",
        ".SH DESCRIPTION",
        "An INI file: [section] headers, then key = value lines; ';' starts a",
        "comment anywhere, '#' at the start of a line.  Relative paths are relative to the file's",
        "directory.  postern check validates a file and names the line and",
        "the fix of every problem.  Keys marked (not used yet) are accepted",
        "and checked but have no effect in this version.",
    ]
    section = None
    for line in (ROOT / "src/config/keys.def").read_text().splitlines():
        m = ROW.match(line)
        if not m:
            continue
        sec, key, typ, default, lo, hi, active, help_ = m.groups()
        if sec != section:
            out += [".SH [%s]" % sec]
            section = sec
        out += [".TP", "\\fB%s\\fR (%s)" % (key, typ.lower())]
        text = esc(help_)
        if active == "0":
            text += " (not used yet)"
        out += [text + "."]
        bits = ["Default: %s" % (esc(default) if default else "empty")]
        if typ == "UINT":
            bits.append("range %s to %s" % (lo, hi.replace("UINT64_MAX",
                                                           "2^64\\-1")))
        out += [", ".join(bits) + "."]
    out += [".SH SEE ALSO", "postern(8)", ""]
    return "\n".join(out)


def main():
    page = ROOT / "docs/man/postern.conf.5"
    text = render()
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        if not page.exists() or page.read_text() != text:
            print("docs/man/postern.conf.5 is stale: run `make man`")
            return 1
        return 0
    page.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
