"""postern explain: the reply-code reference, driven through the real binary.

The five seed pages (golden/explain/seeds/, copied from shared/seeds/) must
come out of `postern explain A B --lang L` with all of their content, minus
the seeds' defects; the exact output is pinned in golden/explain/*.txt
(regenerate with UPDATE_GOLDEN=1 after a deliberate change, and review the
diff).  JSON must parse and round-trip, HTML must be well-formed enough for
html.parser with the right lang and heading structure, and the static site
must have no broken links.  The binary is $POSTERN (default build/postern).
"""
import html.parser
import json
import os
import pathlib
import pty
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
POSTERN = os.path.abspath(os.environ.get("POSTERN", ROOT / "build" / "postern"))
GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "explain"

# seed file -> (code A, code B, language of its headings)
SEEDS = {
    "000_0826cac7e147d39e.txt": ("421", "451", "id"),
    "001_548738544e90eb59.txt": ("421", "551", "tr"),
    "002_d5ac29dd82d23772.txt": ("421", "450", "fr"),
    "003_fab2279ae4ff9aa2.txt": ("220", "451", "id"),
    "004_1fa040765fa2028d.txt": ("421", "455", "ko"),
}

HEADINGS = {
    "en": ["Description", "When You See It", "How to Fix",
           "Key Differences", "When to Use Which"],
    "id": ["Deskripsi", "Ketika Anda Melihatnya", "Cara Memperbaiki",
           "Perbedaan Utama", "Kapan Menggunakan Yang Mana"],
    "tr": ["Açıklama", "Gördüğünüzde", "Nasıl Düzeltilir", "Temel Farklar",
           "Hangisini Ne Zaman Kullanmalı"],
    "fr": ["Description", "Quand vous le voyez", "Comment résoudre",
           "Différences clés", "Quand utiliser lequel"],
    "ko": ["설명", "이 코드를 보게 되는 경우", "해결 방법", "주요 차이점",
           "언제 어떤 것을 사용할지"],
}

CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "NO_COLOR")}


def run(*args, env=None, stdin=None):
    e = dict(CLEAN_ENV)
    e.update(env or {})
    return subprocess.run([POSTERN, "explain", *args], capture_output=True,
                          env=e, input=stdin, timeout=60)


def out(*args, **kw):
    r = run(*args, **kw)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def setup_module(module):
    if not os.access(POSTERN, os.X_OK):
        pytest.fail(f"{POSTERN} is not built; run `make` or set POSTERN")


# ---------------------------------------------------------------- the CLI

def test_help_prints_usage_and_exits_0():
    text = out("--help")
    assert text.startswith("usage: postern explain CODE [CODE2]")
    for word in ("--lang", "--format", "--site", "NO_COLOR"):
        assert word in text


@pytest.mark.parametrize("args", [
    [], ["--bogus"], ["421", "451", "452"], ["--lang", "de", "421"],
    ["--format", "pdf", "421"], ["--site"], ["--site", "x", "421"],
])
def test_usage_errors_exit_2_with_one_line(args):
    r = run(*args)
    assert r.returncode == 2
    assert r.stdout == b""
    assert len(r.stderr.decode().strip().splitlines()) == 1


@pytest.mark.parametrize("code, closest", [
    ("299", "252, 251, 250"),
    ("4.9.9", "4.7.9, 4.7.8, 4.7.10"),
    ("2.7.26", None),
])
def test_unknown_code_exits_1_naming_closest_known_codes(code, closest):
    r = run(code)
    assert r.returncode == 1
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1
    assert f"unknown reply code '{code}'" in err
    if closest:
        assert f"closest known codes: {closest}" in err


def test_no_code_at_all_exits_1():
    r = run("hello there")
    assert r.returncode == 1
    assert "no SMTP reply code" in r.stderr.decode()


def test_list_names_every_code():
    lines = out("--list").splitlines()
    codes = [line.split()[0] for line in lines]
    assert "421" in codes and "X.7.26" in codes and "X.7.30" in codes
    assert len(codes) > 110


# --------------------------------------------------------------- the seeds

def seed_paragraphs(name):
    """The seed's content as paragraphs, with its defects repaired."""
    text = (GOLDEN / "seeds" / name).read_text()
    text = text.replace("when when", "when")
    text = text.replace("identificati In contrast",
                        "identification. In contrast")
    text = re.sub(r"identificati$", "identification.", text, flags=re.M)
    paras = [p.strip() for p in text.splitlines() if p.strip()]
    drop = {"SMTP", "1.", "2.", "3.", "4.", "5."}
    paras = [p for p in paras if p not in drop]
    result = []
    for p in paras:
        # "For A (..): fix For B (..): fix" is one seed paragraph.
        result.extend(s.strip() for s in re.split(r" (?=For \d{3} \()", p))
    return result


def output_paragraphs(text):
    paras = []
    for line in text.splitlines():
        line = re.sub(r"^\s+(\d+\. )?", "", line)
        if line:
            paras.append(line)
    return paras


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seed_page_content_comes_out_in_its_language(seed):
    a, b, lang = SEEDS[seed]
    got = output_paragraphs(out(a, b, "--lang", lang))
    want = seed_paragraphs(seed)
    # Every seed paragraph, in the seed's order (the title: "SMTP A Name
    # vs B Name"; the trailing "Learn more" heading too).
    pos = 0
    for para in want:
        assert para in got[pos:], f"missing or out of order: {para!r}"
        pos = got.index(para, pos) + 1
    text = "\n".join(got)
    assert "when when" not in text.lower()
    assert "identificati " not in text


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seed_page_matches_golden(seed):
    a, b, lang = SEEDS[seed]
    got = out(a, b, "--lang", lang)
    path = GOLDEN / f"{a}-vs-{b}.{lang}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(got)
    assert got == path.read_text()


def test_any_other_pair_works_the_same_way():
    text = out("550", "5.7.26", "--lang", "en")
    assert text.startswith("SMTP 550 Mailbox Unavailable vs 5.7.26 "
                           "Multiple Authentication Checks Failed\n")
    assert "You encounter 5.7.26 when mail from a domain" in text
    text = out("452", "552")
    assert "is a 4xx Transient Negative response, while 552" in text
    assert "In contrast, 552 means that" in text


# ------------------------------------------------------ languages and input

@pytest.mark.parametrize("lang", sorted(HEADINGS))
def test_headings_in_each_language(lang):
    single = output_paragraphs(out("421", "--lang", lang))
    for h in HEADINGS[lang][:3]:
        assert h in single
    pair = output_paragraphs(out("450", "452", "--lang", lang))
    for h in HEADINGS[lang]:
        assert h in pair


@pytest.mark.parametrize("env, heading", [
    ({"LANG": "fr_FR.UTF-8"}, "Quand vous le voyez"),
    ({"LANG": "ko_KR.UTF-8"}, "이 코드를 보게 되는 경우"),
    ({"LANG": "de_DE.UTF-8"}, "When You See It"),
    ({"LANG": "C"}, "When You See It"),
    ({"LANG": "fr_FR.UTF-8", "LC_ALL": "tr_TR.UTF-8"}, "Gördüğünüzde"),
    ({"LANG": "fr_FR.UTF-8", "LC_MESSAGES": "id_ID.UTF-8"},
     "Ketika Anda Melihatnya"),
])
def test_lang_defaults_from_the_environment(env, heading):
    assert heading in output_paragraphs(out("451", env=env))


def test_lang_option_beats_the_environment():
    text = out("451", "--lang=ko", env={"LANG": "fr_FR.UTF-8"})
    assert "해결 방법" in text


@pytest.mark.parametrize("given, codes", [
    ("421", ["421"]),
    ("4.7.1", ["4.7.1"]),
    ("5.7.26", ["5.7.26"]),
    ("550 5.7.1 Relaying denied", ["550", "5.7.1"]),
    ("550-5.1.1 The account does not exist.\n550-5.1.1 Check the address\n"
     "550 5.1.1 for typos", ["550", "5.1.1"]),
    ("Jan  5 10:11:12 mx postfix/smtp[812]: 3F2A1: to=<a@b.example>, "
     "relay=mx.b.example[192.0.2.1]:25, dsn=5.1.1, status=bounced (host "
     "mx.b.example[192.0.2.1] said: 550 5.1.1 <a@b.example>: User unknown "
     "(in reply to RCPT TO command))", ["550", "5.1.1"]),
])
def test_accepted_inputs(given, codes):
    data = json.loads(out(given, "--format", "json"))
    assert [c["code"] for c in data["codes"]] == codes


def test_multi_line_reply_keeps_its_whole_text():
    data = json.loads(out("550-5.1.1 The account does not exist.\r\n"
                          "550 5.1.1 Check the address", "--format", "json"))
    assert data["inputs"][0]["text"] == \
        "The account does not exist. Check the address"


def test_reply_from_stdin():
    r = run("-", "--format", "json", stdin=b"451 4.3.0 spool write failed\n")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert [c["code"] for c in data["codes"]] == ["451", "4.3.0"]


def test_reply_whose_classes_disagree_gets_a_note():
    data = json.loads(out("550 4.7.1 odd", "--format", "json"))
    assert len(data["notes"]) == 1 and "4.7.1" in data["notes"][0]


# ---------------------------------------------------------------- formats

def test_text_has_no_colour_in_a_pipe():
    assert "\033[" not in out("421", "451")


def run_in_pty(args, env):
    """Run with stdout on a terminal; return what it printed."""
    e = dict(CLEAN_ENV)
    e.update(env)
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(POSTERN, [POSTERN, "explain", *args], e)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_text_has_colour_on_a_tty_unless_no_color():
    assert "\033[" in run_in_pty(["421"], {})
    assert "\033[" not in run_in_pty(["421"], {"NO_COLOR": "1"})


def test_json_schema_and_round_trip():
    raw = out("421", "551", "--format", "json", "--lang", "tr")
    data = json.loads(raw)
    assert data["schema"] == "postern-explain/1"
    assert data["lang"] == "tr"
    assert data["headings"]["fix"] == "Nasıl Düzeltilir"
    assert data["title"] == "SMTP 421 Service Not Available vs 551 User Not Local"
    a, b = data["codes"]
    assert (a["code"], a["class"], a["class_name"]) == \
        ("421", "4xx", "Transient Negative")
    assert (b["code"], b["class"], b["class_name"]) == \
        ("551", "5xx", "Permanent Negative")
    for c in data["codes"]:
        for key in ("kind", "name", "description", "when", "fix",
                    "reference"):
            assert c[key]
    cmp = data["comparison"]
    assert cmp["same_class"] is False
    assert len(cmp["differences"]) == 5
    assert [w["code"] for w in cmp["which"]] == ["421", "551"]
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    single = json.loads(out("5.7.26", "--format", "json"))
    assert single["comparison"] is None
    assert single["codes"][0]["subject"] == "X.7.X"


def test_json_escapes_what_a_reply_holds():
    reply = b'550 5.7.1 say "hi" \\ back\x01 caf\xc3\xa9 bad\xff end'
    r = run("-", "--format", "json", stdin=reply)
    assert r.returncode == 0
    r.stdout.decode("utf-8")        # valid UTF-8 throughout
    data = json.loads(r.stdout)
    assert data["inputs"][0]["text"] == \
        'say "hi" \\ back\x01 café bad\ufffd end'


class Page(html.parser.HTMLParser):
    """Just enough of a page to check its structure and links."""

    def __init__(self):
        super().__init__()
        self.lang = None
        self.tags = []
        self.headings = []
        self.hrefs = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "html":
            self.lang = attrs.get("lang")
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def parse_page(text):
    p = Page()
    p.feed(text)
    p.close()
    return p


def check_structure(p, lang):
    assert p.lang == lang
    assert p.tags.count("main") == 1
    assert p.title.strip()
    assert p.headings[0] == 1 and p.headings.count(1) == 1
    for prev, cur in zip(p.headings, p.headings[1:]):
        assert cur <= prev + 1, "heading level skipped"


@pytest.mark.parametrize("lang", sorted(HEADINGS))
def test_html_is_a_standalone_accessible_page(lang):
    text = out("421", "551", "--format", "html", "--lang", lang)
    assert text.startswith("<!DOCTYPE html>")
    p = parse_page(text)
    check_structure(p, lang)
    assert p.hrefs == []            # standalone: no links out
    for h in HEADINGS[lang]:
        assert h in text


def test_html_escapes_the_reply():
    text = out('550 5.7.1 <script>alert("x")</script> & co', "--format",
               "html")
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in text
    p = parse_page(text)
    check_structure(p, "en")
    assert p.headings == [1, 2, 3, 3, 3, 2, 3, 3, 3]   # a reply: two codes


# ------------------------------------------------------------------ the site

SEED_PAIRS = ["421-vs-451", "421-vs-551", "421-vs-450", "220-vs-451",
              "421-vs-455"]
CONFUSED_PAIRS = ["421-vs-452", "450-vs-451", "450-vs-452", "451-vs-452",
                  "550-vs-551", "550-vs-553", "550-vs-554", "551-vs-553",
                  "553-vs-554", "551-vs-554"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("site") / "ref"
    r = run("--site", str(d))
    assert r.returncode == 0, r.stderr.decode()
    return d


def test_site_has_every_page(site):
    assert (site / "index.html").is_file()
    for lang in HEADINGS:
        assert (site / lang / "index.html").is_file()
        for code in ("421", "220", "556", "4.7.1", "5.7.1", "5.7.26",
                     "2.1.5", "5.7.30"):
            assert (site / lang / f"{code}.html").is_file(), code
        for pair in SEED_PAIRS + CONFUSED_PAIRS:
            assert (site / lang / "compare" / f"{pair}.html").is_file()


def test_site_pages_have_their_language_and_structure(site):
    for page in site.rglob("*.html"):
        rel = page.relative_to(site)
        lang = rel.parts[0] if len(rel.parts) > 1 else "en"
        check_structure(parse_page(page.read_text()), lang)


def test_site_links_all_resolve(site):
    pages = list(site.rglob("*.html"))
    linked = set()
    for page in pages:
        for href in parse_page(page.read_text()).hrefs:
            assert not re.match(r"^[a-z]+:", href), f"external: {href}"
            target = (page.parent / href).resolve()
            assert target.is_file(), f"{page}: broken link {href}"
            linked.add(target)
    # Every page but the root index is reachable by some link.
    unlinked = {p.resolve() for p in pages} - linked
    assert unlinked <= {(site / "index.html").resolve()}


def test_site_has_a_language_switcher(site):
    p = parse_page((site / "ko" / "compare" / "421-vs-455.html").read_text())
    for lang in ("en", "id", "tr", "fr"):
        assert f"../../{lang}/compare/421-vs-455.html" in p.hrefs


def test_site_unwritable_dir_exits_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("--site", str(blocker / "sub"))
    assert r.returncode == 1
    assert "cannot create" in r.stderr.decode()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless chromium not installed")
def test_site_renders_in_headless_chromium(site, tmp_path):
    for page in ("index.html", "fr/compare/421-vs-450.html", "ko/5.7.26.html"):
        shot = tmp_path / (page.replace("/", "_") + ".png")
        r = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             f"--screenshot={shot}", "--window-size=1024,1400",
             (site / page).as_uri()],
            capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        assert shot.is_file() and shot.stat().st_size > 1000
