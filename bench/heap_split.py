#!/usr/bin/env python3
# Sums a heaptrack peak flamegraph by holder: `heaptrack_print FILE.zst --print-flamegraph OUT
# --flamegraph-cost-type peak`, then `python3 bench/heap_split.py OUT`. Each allocation stack is
# given to the first holder (in the list below) one of its frames names; the rest is "other".
import sys, re, collections
pats = [
 ("record restore (RecordFold::restore_bytes)", r"RecordFold::restore_bytes"),
 ("record fold add (tail/whole)", r"RecordFold::add"),
 ("record finish", r"RecordFold::finish"),
 ("checkpoint section bytes", r"UsableCheckpoint|run_record_section|write_checkpoint|CheckpointSection"),
 ("artifact index (refresh_index)", r"Impl::refresh_index"),
 ("writer facts", r"writer_facts|make_writer_facts|facts_of|sync_writer_facts"),
 ("target versions", r"latest_of_every_target"),
 ("content caches (load/insert)", r"ContentCache::insert|Impl::load\b"),
 ("gather", r"Impl::gather"),
 ("steps_by_inputs", r"known_steps_by_inputs"),
 ("tally_so_far", r"tally_so_far"),
 ("overrides/stops read", r"Overrides::read|HardStopFold"),
 ("plan", r"Plan::|sync_plan"),
 ("integrity check", r"check_integrity|Ledger::verify"),
 ("project open/recover", r"Project::open|ArtifactStore::recover|complete_mirrors"),
 ("registry/skills/schemas", r"skills::|Registry|SchemaSet|schema"),
 ("sqlite", r"sqlite3"),
 ("walk (other)", r"Impl::walk|run_phase|Impl::produce"),
 ("engine other", r"avps::engine::"),
 ("static init", r"_GLOBAL__sub_I|static_initialization"),
]
pats = [(n, re.compile(p)) for n, p in pats]
tot = collections.Counter()
allsum = 0
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip("\n").rpartition(" ")
    n = int(n); allsum += n
    frames = stack.split(";")
    cat = "other"
    for name, p in pats:
        if any(p.search(f) for f in frames):
            cat = name; break
    tot[cat] += n
for k, v in tot.most_common():
    print(f"{v/1e6:8.2f} MB  {k}")
print(f"{allsum/1e6:8.2f} MB  total at peak")
