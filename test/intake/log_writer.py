#!/usr/bin/python3
"""A log-writing process for test/intake/intake_follow.py.

Writes --lines numbered lines ("<date> <time> INFO writer: seq=<n> <filler>")
to --path at about --rate lines a second, and every --rotate-every lines
rotates the file: "rename" (the file moves to <path>.<k>, three more lines
still go to the old descriptor, then a new file is opened, as an
application does before it reopens its log), "truncate" (copytruncate:
copied to <path>.<k>, then truncated in place), or both in turn
("alternate").  Every 97th line is written in two parts 0.3 s apart, so a
reader sees an unfinished last line.  Prints "done <n>" at the end.
"""
import argparse
import os
import shutil
import sys
import time


def line(n):
    t = 1767261600 + n // 1000          # 2026-01-01 10:00:00 UTC, 1,000 lines a second
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + ".%03d" % (n % 1000)
    return "%s INFO writer: seq=%d %s\n" % (stamp, n, "x" * (n % 53))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", required=True)
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--rotate-every", type=int, default=0)
    ap.add_argument("--mode", choices=["rename", "truncate", "alternate"], default="alternate")
    ap.add_argument("--first", type=int, default=1)
    args = ap.parse_args()

    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    fd = os.open(args.path, flags, 0o644)
    start = time.time()
    k = 0
    n = args.first
    last = args.first + args.lines - 1
    while n <= last:
        text = line(n).encode()
        if n % 97 == 0:
            os.write(fd, text[:len(text) // 2])
            time.sleep(0.3)
            os.write(fd, text[len(text) // 2:])
        else:
            os.write(fd, text)
        if args.rotate_every and (n - args.first + 1) % args.rotate_every == 0 and n < last:
            k += 1
            mode = args.mode if args.mode != "alternate" else ("rename" if k % 2 else "truncate")
            target = "%s.%d" % (args.path, k)
            if mode == "rename":
                os.rename(args.path, target)
                for _ in range(3):      # late lines to the rotated file
                    if n < last:
                        n += 1
                        os.write(fd, line(n).encode())
                os.close(fd)
                fd = os.open(args.path, flags, 0o644)
            else:
                shutil.copyfile(args.path, target)
                os.truncate(args.path, 0)
        n += 1
        ahead = (n - args.first) / args.rate - (time.time() - start)
        if ahead > 0:
            time.sleep(ahead)
    os.close(fd)
    print("done %d" % (last - args.first + 1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
