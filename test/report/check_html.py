#!/usr/bin/env python3
"""Static checks of a smartetl.report_html() page, printed as unnumbered TAP
lines ("ok - ..." / "not ok - ...") for check_report.sh to number.

    check_html.py FILE LABEL [EXPECT_TEXT...]

- the document parses with html.parser with balanced tags: every end tag
  closes the element opened last, nothing is left open, void elements
  (<meta>, <br>, ...) have no end tag, and there is exactly one <html>,
  <head>, <body>;
- it is self-contained: no <script>, <link>, <img>, <iframe>, <object>,
  <embed>, no src/href/srcset/action/ping/xlink:href attribute, no on*
  event handler attribute, no url( or @import in CSS;
- every EXPECT_TEXT occurs in the text content (after entity decoding).
"""
import re
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}
FORBIDDEN_TAGS = {"script", "link", "img", "iframe", "object", "embed", "frame", "frameset",
                  "audio", "video", "source", "base", "form", "image", "use", "foreignobject"}
FORBIDDEN_ATTRS = {"src", "href", "srcset", "action", "formaction", "ping", "xlink:href",
                   "background", "poster", "data"}


class Checker(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.errors = []
        self.counts = {}
        self.forbidden = []
        self.text = []
        self.css = []
        self.in_style = False
        self.doctype = None

    def handle_decl(self, decl):
        self.doctype = decl

    def _open(self, tag, attrs, closes):
        # the document's <title> is the one in <head>; SVG charts have their own
        key = "head title" if tag == "title" and self.stack and self.stack[-1][0] == "head" else tag
        self.counts[key] = self.counts.get(key, 0) + 1
        if tag in FORBIDDEN_TAGS:
            self.forbidden.append("<%s>" % tag)
        for name, _ in attrs:
            if name in FORBIDDEN_ATTRS or name.startswith("on"):
                self.forbidden.append("%s attribute on <%s>" % (name, tag))
        if not closes and tag not in VOID:
            self.stack.append((tag, self.getpos()))
        if tag == "style":
            self.in_style = True

    def handle_starttag(self, tag, attrs):
        self._open(tag, attrs, False)

    def handle_startendtag(self, tag, attrs):
        self._open(tag, attrs, True)

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append("end tag </%s> of a void element at %s" % (tag, self.getpos()))
            return
        if not self.stack:
            self.errors.append("</%s> with nothing open at %s" % (tag, self.getpos()))
            return
        top, pos = self.stack[-1]
        if top != tag:
            self.errors.append("</%s> at %s closes <%s> opened at %s" % (tag, self.getpos(), top, pos))
            return
        self.stack.pop()
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        (self.css if self.in_style else self.text).append(data)


def main():
    path, label, expect = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(path, encoding="utf-8") as f:
        src = f.read()
    p = Checker()
    p.feed(src)
    p.close()
    results = []

    def check(ok, desc, diag=None):
        results.append(ok)
        print("%s - %s: %s" % ("ok" if ok else "not ok", label, desc))
        if not ok and diag:
            for line in diag[:10]:
                print("#   %s" % line)

    check(p.doctype is not None and p.doctype.lower() == "doctype html", "starts with <!DOCTYPE html>",
          ["doctype: %r" % p.doctype])
    errors = p.errors + ["<%s> opened at %s is never closed" % (t, pos) for t, pos in p.stack]
    check(not errors, "html.parser finds balanced tags, no unclosed elements", errors)
    one = ("html", "head", "body", "head title")
    check(all(p.counts.get(t) == 1 for t in one), "one html, head, body, and a title in head",
          ["counts: %r" % {t: p.counts.get(t) for t in one}])
    css = "".join(p.css)
    bad = p.forbidden + (["url( in CSS"] if "url(" in css.lower() else []) + \
        (["@import in CSS"] if "@import" in css.lower() else [])
    check(not bad, "self-contained: no script, external reference or event handler", bad)
    text = re.sub(r"\s+", " ", "".join(p.text))
    for e in expect:
        check(e in text, "text shows %r" % e)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
