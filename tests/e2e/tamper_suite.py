#!/usr/bin/env python3
"""The tamper suite: randomized mutations of a finished project, each of which `avps gate` must
catch (exit 1) with a message naming what was touched. Every kind of file the project holds is
mutated: artifact faces and objects, renders, request/response/wire/render objects (kept in the
ledger's object table since schema 3, or files under .avps/objects), HEAD, the CSV face, and the
ledger's rows (changed, inserted, reordered, deleted; the append-only triggers
dropped for the edit and put back). Each mutation is undone before the next, and the project is
checked clean again every so often.

usage: tamper_suite.py AVPS PROJECT [--count N] [--seed S]
Prints the counts; exits 1 if the gate missed, or did not name, any mutation.
"""
import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("avps")
parser.add_argument("project")
parser.add_argument("--count", type=int, default=200)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()
P = args.project
rng = random.Random(args.seed)
LEDGER = os.path.join(P, ".avps", "ledger.db")


def q(sql):
    db = sqlite3.connect(f"file:{LEDGER}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def obj(sha):
    return f".avps/objects/{sha[:2]}/{sha[2:]}.json"


def held(sha):
    """Whether the ledger holds object `sha` (else it is a file, obj(sha))."""
    return bool(q(f"SELECT 1 FROM objects WHERE sha256='{sha}'"))


# What the record names, by kind of file.
faces = [r[0] for r in q("SELECT path FROM artifacts")]
artifact_objects = sorted({r[0] for r in q("SELECT json_sha256 FROM artifacts")})
renders = [r[0] for r in q("SELECT json_extract(body,'$.path') FROM events WHERE kind='media.recorded'")]
exchange_objects = {}
for field in ("request_sha256", "response_sha256", "media_sha256", "wire_request_sha256", "wire_response_sha256"):
    shas = [r[0] for r in q(f"SELECT DISTINCT json_extract(body,'$.{field}') FROM events "
                            f"WHERE kind LIKE 'exchange.%' AND json_extract(body,'$.{field}') IS NOT NULL")]
    if shas:
        exchange_objects[field] = shas
last_seq = q("SELECT max(seq) FROM events")[0][0]
artifact_names = [r[0] for r in q("SELECT name FROM artifacts")]
CSV = "logs/RUN_LOG_v001.csv"


def read(rel):
    with open(os.path.join(P, rel), "rb") as f:
        return f.read()


def write(rel, data):
    path = os.path.join(P, rel)
    if os.path.exists(path):
        os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(data)


def flip(rel):
    data = bytearray(read(rel))
    i = rng.randrange(len(data))
    data[i] ^= 1 << rng.randrange(8)
    write(rel, bytes(data))


def truncate(rel):
    data = read(rel)
    write(rel, data[: rng.randrange(len(data))])


def append(rel):
    write(rel, read(rel) + b"\n")


def delete(rel):
    os.remove(os.path.join(P, rel))


def swap(a, b):
    da, db_ = read(a), read(b)
    write(a, db_)
    write(b, da)


def different_pair(paths):
    for _ in range(100):
        a, b = rng.sample(paths, 2)
        if read(a) != read(b):
            return a, b
    raise SystemExit("no two different files to swap")


def ledger_edit(sql_fn):
    """Runs an edit with the append-only triggers dropped, then puts them back as they were."""
    db = sqlite3.connect(LEDGER)
    triggers = db.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'").fetchall()
    for name, _ in triggers:
        db.execute(f"DROP TRIGGER {name}")
    sql_fn(db)
    for _, sql in triggers:
        db.execute(sql)
    db.commit()
    db.close()


def object_mutation(sha, how):
    """flip / truncate / delete object `sha`: in the ledger's table (its triggers dropped for the
    edit and put back), or its file. Returns (paths touched, what the gate must name)."""
    if not held(sha):
        {"flip": flip, "truncate": truncate, "delete": delete}[how](obj(sha))
        return [obj(sha)], obj(sha) if how != "delete" else f"object {sha}"

    def edit(db):
        if how == "delete":
            db.execute("DELETE FROM objects WHERE sha256=?", (sha,))
            return
        data = bytearray(db.execute("SELECT bytes FROM objects WHERE sha256=?", (sha,)).fetchone()[0])
        if how == "flip":
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        else:
            data = data[: rng.randrange(len(data))]
        db.execute("UPDATE objects SET bytes=? WHERE sha256=?", (bytes(data), sha))

    ledger_edit(edit)
    return [".avps/ledger.db"], f"object {sha}"


def event_row(seq):
    return q(f"SELECT seq, run_id, ts, kind, body, prev_hash, hash FROM events WHERE seq={seq}")[0]


def changed_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return None


def edit_body(db, seq):
    body = json.loads(event_row(seq)[4])
    leaves = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + [i])
        elif changed_value(node) is not None:
            leaves.append(path)

    walk(body, [])
    path = rng.choice(leaves)
    node = body
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = changed_value(node[path[-1]])
    db.execute("UPDATE events SET body=? WHERE seq=?", (json.dumps(body, separators=(",", ":")), seq))


def csv_lines():
    return read(CSV).decode().split("\n")


def set_csv(lines):
    write(CSV, "\n".join(lines).encode())


KINDS = [
    "face.flip", "face.truncate", "face.append", "face.delete", "face.swap", "face.added",
    "artifact_object.flip", "artifact_object.delete",
    "render.flip", "render.truncate", "render.delete", "render.swap", "render.added",
    "exchange_object.flip", "exchange_object.truncate", "exchange_object.delete",
    "head.seq", "head.hash", "head.delete", "head.garbage",
    "csv.cell", "csv.row_deleted", "csv.row_inserted", "csv.rows_reordered", "csv.torn",
    "ledger.body", "ledger.ts", "ledger.deleted_middle", "ledger.deleted_tail", "ledger.inserted",
    "ledger.reordered", "ledger.index_edited", "ledger.index_deleted", "ledger.reservation_edited",
    "ledger.reservation_end_deleted",
]


def mutation(kind):
    """Applies one mutation of `kind` to a random target; returns (kind, paths touched, text the
    gate must print)."""
    family = kind.split(".")[0]
    if family == "face":
        target = rng.choice(faces)
        if kind == "face.flip":
            flip(target)
        elif kind == "face.truncate":
            truncate(target)
        elif kind == "face.append":
            append(target)
        elif kind == "face.delete":
            delete(target)
        elif kind == "face.swap":
            target, other = different_pair(faces)
            swap(target, other)
            return kind, [target, other], target
        else:  # a file named like the next version of an artifact, never recorded
            name = rng.choice(artifact_names)
            stem, ext = os.path.splitext(name)
            base, version = stem.rsplit("_v", 1)
            folder = os.path.dirname(next(f for f in faces if f.endswith("/" + name)))
            added = f"{folder}/{base}_v{int(version) + 50:03d}{ext}"
            write(added, b"made by hand\n")
            return kind, [added], added
        return kind, [target], target
    if family == "artifact_object":
        touched, expected = object_mutation(rng.choice(artifact_objects), kind.split(".")[1])
        return kind, touched, expected
    if family == "render":
        target = rng.choice(renders)
        if kind == "render.flip":
            flip(target)
        elif kind == "render.truncate":
            truncate(target)
        elif kind == "render.delete":
            delete(target)
        elif kind == "render.swap":
            target, other = different_pair(renders)
            swap(target, other)
            return kind, [target, other], target
        else:
            added = f"media/{os.path.basename(target).split('_a')[0]}_a{rng.randrange(50, 99)}{os.path.splitext(target)[1]}"
            write(added, read(target))
            return kind, [added], added
        return kind, [target], target
    if family == "exchange_object":
        sha = rng.choice(exchange_objects[rng.choice(sorted(exchange_objects))])
        touched, expected = object_mutation(sha, kind.split(".")[1])
        return kind, touched, expected
    if family == "head":
        text = read(".avps/HEAD").decode().split("\n")
        seq, hash_ = text[1].split(" ")
        if kind == "head.seq":
            text[1] = f"{int(seq) - rng.randrange(1, 5)} {hash_}"
        elif kind == "head.hash":
            text[1] = f"{seq} {hash_[:-1]}{'0' if hash_[-1] != '0' else '1'}"
        elif kind == "head.garbage":
            text = ["not a head", ""]
        if kind == "head.delete":
            delete(".avps/HEAD")
        else:
            write(".avps/HEAD", "\n".join(text).encode())
        return kind, [".avps/HEAD"], ".avps/HEAD"
    if family == "csv":
        lines = csv_lines()  # header, rows, "" after the last newline
        rows = range(1, len(lines) - 1)
        i = rng.choice(rows)
        if kind == "csv.cell":
            cells = lines[i].split(",")
            c = rng.randrange(len(cells))
            cells[c] = cells[c] + "9"
            lines[i] = ",".join(cells)
        elif kind == "csv.row_deleted":
            del lines[i]
        elif kind == "csv.row_inserted":
            lines.insert(i, lines[i])
        elif kind == "csv.rows_reordered":
            j = i + 1 if i + 1 < len(lines) - 1 else i - 1
            lines[i], lines[j] = lines[j], lines[i]
        else:
            set_csv(lines)
            truncate(CSV)
            return kind, [CSV], CSV
        set_csv(lines)
        return kind, [CSV], CSV
    # The ledger's own rows.
    seq = rng.randrange(2, last_seq)
    expected = f"ledger event {seq}"
    if kind == "ledger.body":
        ledger_edit(lambda db: edit_body(db, seq))
    elif kind == "ledger.ts":
        ledger_edit(lambda db: db.execute("UPDATE events SET ts=ts||'0' WHERE seq=?", (seq,)))
    elif kind == "ledger.deleted_middle":
        # The next event's link is what breaks; a removed artifact.recorded also leaves its index row.
        ledger_edit(lambda db: db.execute("DELETE FROM events WHERE seq=?", (seq,)))
        expected = f"ledger event {seq + 1}"
    elif kind == "ledger.deleted_tail":
        ledger_edit(lambda db: db.execute("DELETE FROM events WHERE seq=(SELECT max(seq) FROM events)"))
        expected = ".avps/HEAD"
    elif kind == "ledger.inserted":
        row = list(event_row(seq))
        row[0] = last_seq + 1
        row[6] = "f" * 64
        ledger_edit(lambda db: db.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?)", row))
        expected = f"ledger event {last_seq + 1}"
    elif kind == "ledger.reordered":
        while event_row(seq)[3:5] == event_row(seq + 1)[3:5]:
            seq = rng.randrange(2, last_seq)
        a, b = event_row(seq), event_row(seq + 1)
        ledger_edit(lambda db: (db.execute("UPDATE events SET kind=?, body=? WHERE seq=?", (b[3], b[4], seq)),
                                db.execute("UPDATE events SET kind=?, body=? WHERE seq=?", (a[3], a[4], seq + 1))))
        expected = f"ledger event {seq}"
    elif kind == "ledger.index_edited":
        name = rng.choice(artifact_names)
        ledger_edit(lambda db: db.execute("UPDATE artifacts SET face_sha256=(CASE WHEN substr(face_sha256,1,1)='0' THEN '1' ELSE '0' END)"
                                          "||substr(face_sha256,2) WHERE name=?",
                                          (name,)))
        expected = f"artifact index row {name}"
    elif kind == "ledger.index_deleted":
        name = rng.choice(artifact_names)
        ledger_edit(lambda db: db.execute("DELETE FROM artifacts WHERE name=?", (name,)))
        expected = f"artifact index row {name}"
    elif kind == "ledger.reservation_edited":
        ledger_edit(lambda db: db.execute(
            "UPDATE reservations SET amount_micro_usd=amount_micro_usd+1 WHERE rowid=(SELECT rowid FROM reservations "
            "ORDER BY random() LIMIT 1)"))
        expected = "the reservations table differs"
    else:
        ledger_edit(lambda db: db.execute(
            "DELETE FROM reservation_ends WHERE rowid=(SELECT rowid FROM reservation_ends ORDER BY random() LIMIT 1)"))
        expected = "the reservation ends differ"
    return kind, [".avps/ledger.db"], expected


def gate():
    run = subprocess.run([args.avps, "gate", P], capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr


def restore(saved):
    for rel, data in saved.items():
        path = os.path.join(P, rel)
        if rel == ".avps/ledger.db":
            for leftover in (path + "-wal", path + "-shm"):
                if os.path.exists(leftover):
                    os.remove(leftover)
        if data is None:
            if os.path.exists(path):
                os.remove(path)
        else:
            write(rel, data)


code, out = gate()
assert code == 0, f"the project does not pass before tampering:\n{out}"
# Undoing a mutation: the ledger and the two mirrors from copies kept here, any other file from
# the pristine copy of the project kept beside it (PROJECT.pristine).
ledger_backup = read(".avps/ledger.db")
mirrors_backup = {rel: read(rel) for rel in (".avps/HEAD", CSV)}
tried, detected = 0, 0
by_kind = {}
for n in range(args.count):
    # Every kind in turn, each on a random target: 200 mutations try each of the 35 kinds 5 or 6 times.
    kind, touched, expected = mutation(KINDS[n % len(KINDS)])
    tried += 1
    code, out = gate()
    ok = code == 1 and expected in out
    by_kind.setdefault(kind, [0, 0])
    by_kind[kind][0] += 1
    by_kind[kind][1] += ok
    if ok:
        detected += 1
    else:
        print(f"MISSED mutation {n + 1} ({kind}, seed {args.seed}): gate exit {code}, expected it to name "
              f"'{expected}'\n{out}", file=sys.stderr)
    restore({".avps/ledger.db": ledger_backup, **mirrors_backup})
    for rel in touched:
        if rel in (".avps/ledger.db", ".avps/HEAD", CSV):
            continue
        pristine = os.path.join(P + ".pristine", rel)
        if os.path.exists(pristine):
            os.makedirs(os.path.dirname(os.path.join(P, rel)), exist_ok=True)
            shutil.copyfile(pristine, os.path.join(P, rel))
        elif os.path.exists(os.path.join(P, rel)):
            os.remove(os.path.join(P, rel))
    if (n + 1) % 50 == 0:
        code, out = gate()
        assert code == 0, f"the project was not restored after mutation {n + 1} ({kind}):\n{out}"

for kind in sorted(by_kind):
    print(f"  {kind:34} {by_kind[kind][1]}/{by_kind[kind][0]}")
print(f"tamper suite: {detected} of {tried} mutations detected, each naming what was touched "
      f"({len(by_kind)} kinds, seed {args.seed})")
sys.exit(0 if detected == tried else 1)
