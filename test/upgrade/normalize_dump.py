#!/usr/bin/python3
"""Normalise `pg_dump --schema-only --binary-upgrade` output so that an
upgraded database and a fresh install compare equal when, and only when,
their schemas are the same.

Binary-upgrade mode is used because a plain pg_dump prints an extension as
one `CREATE EXTENSION` line and leaves its member objects out; in this mode
every member (tables, columns in order, constraints, indexes, functions with
their bodies and C symbols, types, views, triggers, policies, grants,
comments, owners) is printed, followed by `ALTER EXTENSION ... ADD`.

What is removed, and why it is not part of the schema:
  * `SELECT pg_catalog.binary_upgrade_set_next_...(<oid>)`: object
    identifiers and file numbers differ between any two databases.
  * `UPDATE pg_catalog.pg_class SET relfrozenxid ...`: transaction ids.
  * the extconfig/extcondition arguments of
    `binary_upgrade_create_empty_extension` (OIDs of configuration tables);
    run.sh compares the configuration tables by name instead.
  * dropped-column placeholders (`"........pg.dropped.N........"` and the
    statements that recreate and drop them): a column dropped by an upgrade
    script leaves a hole in the attribute numbers that a fresh table does not
    have; the live columns and their order are still compared.
  * `SEQUENCE SET` entries (setval): a sequence's position is data (run.sh
    checks that the update keeps it), not schema.
  * the order of the dump's entries: each entry (from one `-- Name: ...`
    header to the next) is kept whole, and the entries are sorted, because
    pg_dump breaks ties and dependency loops by OID, i.e. by creation order.
"""
import re
import sys


def normalise(text):
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("SELECT pg_catalog.binary_upgrade_set_next_"):
            i += 1
            continue
        if line.startswith("-- For binary upgrade, recreate dropped column."):
            # UPDATE pg_catalog.pg_attribute ... ; ALTER TABLE ONLY ... DROP COLUMN "...";
            # and the blank line pg_dump writes before the comment
            if out and out[-1] == "":
                out.pop()
            i += 1
            while i < len(lines) and not (lines[i].startswith("ALTER ") and "DROP COLUMN" in lines[i]):
                i += 1
            i += 1
            continue
        if line.startswith("-- For binary upgrade, set heap's relfrozenxid") or \
                line.startswith("-- For binary upgrade, set toast's relfrozenxid"):
            i += 1
            while i < len(lines) and not lines[i].rstrip().endswith(";"):
                i += 1
            i += 1
            continue
        if line.startswith("UPDATE pg_catalog.pg_class") and "relfrozenxid" in line:
            while i < len(lines) and not lines[i].rstrip().endswith(";"):
                i += 1
            i += 1
            continue
        if "pg.dropped." in line:
            # a placeholder column inside CREATE TABLE; if it was the last
            # column, the comma before it goes too
            i += 1
            if i < len(lines) and lines[i].startswith(")") and out and out[-1].endswith(","):
                out[-1] = out[-1][:-1]
            continue
        if "binary_upgrade_create_empty_extension(" in line:
            line = re.sub(r"(binary_upgrade_create_empty_extension\('[^']*', '[^']*', (?:true|false), '[^']*'), .*\);$",
                          r"\1, <config tables compared by name>);", line)
        out.append(line)
        i += 1

    # split into entries at each "--\n-- Name: ..." (or "-- Data for Name")
    # header and sort them; the preamble (SET statements) stays first
    entries = []
    current = []
    preamble = None
    n = len(out)
    for j, line in enumerate(out):
        if line == "--" and j + 1 < n and re.match(r"-- (Name|Data for Name|TOC entry|Dependencies): ", out[j + 1]):
            if preamble is None:
                preamble = current
            else:
                entries.append(current)
            current = []
        current.append(line)
    if preamble is None:
        preamble = current
    else:
        entries.append(current)
    # the closing lines (e.g. "-- PostgreSQL database dump complete") end the last entry
    tail = []
    if entries:
        last = entries[-1]
        for k, line in enumerate(last):
            if line.startswith("-- PostgreSQL database dump complete"):
                tail = last[k - 1:] if k > 0 and last[k - 1] == "--" else last[k:]
                entries[-1] = last[:len(last) - len(tail)]
                break
    entries = ["\n".join(e).rstrip("\n") for e in entries
               if not (len(e) > 1 and "; Type: SEQUENCE SET;" in e[1])]
    entries.sort()
    return "\n".join(preamble).rstrip("\n") + "\n\n" + "\n\n".join(entries) + "\n\n" + "\n".join(tail) + "\n"


if __name__ == "__main__":
    sys.stdout.write(normalise(sys.stdin.read()))
