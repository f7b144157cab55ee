#!/usr/bin/env python3
"""lint.py - the checks of `make lint` that a compiler does not make.

1. Include direction (STYLE.md): a file includes headers of its own
   directory or of a layer to its right:
       cli -> server -> route -> policy, spool, deliver, outbound, explain
           -> proto, reply, config, tls, auth -> util
   One exception, named here so it stays one: deliver/ and outbound/ may
   include spool/ headers, because the spool is the hand-off between
   stages (the message type lives there); and proto/limits.h, the RFC's
   numbers, may be included from anywhere.
2. Banned functions: sprintf strcpy strcat strtok atoi gets system.
3. Stray reply codes: a string literal starting with a three-digit code
   and a space or dash belongs in src/reply/replies.def only.
Exit status 1 when anything is found, with one FILE:LINE: line each.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = {
    "main.c": -1, "cli": 0,
    "server": 1, "route": 2,
    "policy": 3, "spool": 3, "deliver": 3, "outbound": 3, "explain": 3,
    "proto": 4, "reply": 4, "config": 4, "tls": 4, "auth": 4,
    "util": 5,
}
HANDOFF = {("deliver", "spool"), ("outbound", "spool")}
BANNED = re.compile(r"\b(sprintf|strcpy|strcat|strtok|atoi|gets|system)\s*\(")
STRAY = re.compile(r'(?<!\\)"[2-5][0-9][0-9][ -]')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def strip_comments(text):
    """Blanks out comments, keeping line numbers."""
    return re.sub(r"/\*.*?\*/|//[^\n]*",
                  lambda m: re.sub(r"[^\n]", " ", m.group(0)), text,
                  flags=re.S)


def main():
    problems = []
    for path in sorted((ROOT / "src").rglob("*.[ch]")):
        rel = path.relative_to(ROOT)
        area = rel.parts[1] if len(rel.parts) > 2 else rel.parts[-1]
        text = strip_comments(path.read_text(encoding="utf-8"))
        for n, line in enumerate(text.splitlines(), 1):
            m = INCLUDE.match(line)
            if m and area in LAYERS and m.group(1) in LAYERS:
                to = m.group(1)
                if (to != area and LAYERS[to] <= LAYERS[area]
                        and (area, to) not in HANDOFF
                        and "proto/limits.h" not in line):
                    problems.append(f"{rel}:{n}: {area}/ includes {to}/, "
                                    "a layer to its left or its own")
            if BANNED.search(line) and not re.search(
                    r"\b(snprintf|vsnprintf|strtok_r)\s*\(", line):
                problems.append(f"{rel}:{n}: banned function: "
                                f"{BANNED.search(line).group(1)}")
            if STRAY.search(line) and path.suffix == ".c":
                problems.append(f"{rel}:{n}: reply text outside "
                                "src/reply/replies.def")
    for p in problems:
        print(p)
    print(f"lint: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
