#!/usr/bin/env python3
"""Which B-trees a run's commits wrote: the pages of a copy of SQLite's WAL, by table or index.

    walpages.py DATABASE WAL_COPY

The WAL copy is taken right after a measured run (bench/run.sh, `measured_send`): it holds the
frames of the run's last commits (those since the log last restarted, and what is left of the
generations before). At a max rate the log restarts every ~4,096 frames, a fraction of a
second, so they are the run's last second or so; after a short or slow run, older generations
may hold commits from before it (the line says how many generations were read). Every frame is one page written by a commit
(and copied into the database again by a checkpoint), so pages per commit by B-tree say where
the bytes written per message go. Pages are named by SQLite's `dbstat` table of the database as
it is when this runs (a page freed and reused meanwhile would be named by its new owner).
Prints one line; prints why it cannot when `dbstat` is missing or the copy holds no commit.
"""
import sqlite3
import struct
import sys
from collections import Counter


def frames(wal):
    """(page number, is a commit frame) of the frames of whole commits in the log file, and
    how many generations of the log they come from.

    After a restart SQLite writes the log from its start again: beyond the current
    generation's last frame lie the frames of earlier ones, each generation with its salt.
    They are read too, less the frames up to a segment's first commit when the segment does not
    start the file (the end of a commit whose beginning was overwritten) and those after a
    segment's last commit (unfinished).
    """
    with open(wal, "rb") as f:
        data = f.read()
    if len(data) < 32 or struct.unpack(">I", data[:4])[0] not in (0x377F0682, 0x377F0683):
        return [], 0
    page_size = struct.unpack(">I", data[8:12])[0]
    segments, salt, off = [], None, 32
    while off + 24 + page_size <= len(data):
        page, db_size = struct.unpack(">II", data[off : off + 8])
        if data[off + 8 : off + 16] != salt:
            salt = data[off + 8 : off + 16]
            segments.append((off, []))
        segments[-1][1].append((page, db_size != 0))
        off += 24 + page_size
    out, used = [], 0
    for start, seg in segments:
        ends = [i + 1 for i, (_, commit) in enumerate(seg) if commit]
        if not ends:
            continue
        begin = 0 if start == 32 else ends[0]
        out += seg[begin : ends[-1]]
        used += 1
    return out, used


def main():
    db, wal = sys.argv[1], sys.argv[2]
    written, generations = frames(wal)
    commits = sum(1 for _, c in written if c)
    if commits == 0:
        print("the WAL copy holds no commit")
        return
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    except sqlite3.Error as e:
        print(f"cannot name the pages ({e})")
        return
    # a page dbstat does not list is free now (or past the end: the database shrank)
    by_tree = Counter(owner.get(page, "(free)") for page, _ in written)
    parts = ", ".join(f"{name} {n / commits:.1f}" for name, n in by_tree.most_common(8))
    print(
        f"{len(written) / commits:.1f} pages per commit over {commits} commits"
        f" ({generations} generations of the log): {parts}"
    )


if __name__ == "__main__":
    main()
