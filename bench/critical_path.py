#!/usr/bin/env python3
"""The critical-path bound of a produced project (issue 14 item 5).

Usage: critical_path.py PROJECT_DIR LATENCY_MS

Reads the calls the project's ledger recorded (exchange.intent events) and the stage graph
(the project's policies/stage_graph.json, else the shipped one), and prints the shortest wall time
any scheduler could reach with unbounded --jobs when every call takes LATENCY_MS and nothing else
takes time: the longest path through the units of work, where a unit is a graph step in one
context (the project, an entity, a scene, a shot) and weighs its recorded calls x the latency.

A unit waits for the units the graph's edges feed it from: the same scene (or shot), the previous
scene for an `across: previous_scene` edge, every unit of a project-wide or per-entity step, every
scene's or shot's unit for a project-wide reader; in a phase whose `order` is scene_order, for the
previous scene's units of the phase; in a per-shot phase, for the same shot's previous step (the
waves run the steps in order). The storyboard frame's render counts in its review's unit.

It is a lower bound in one more way: a loop whose revision is another step's (a judge's FAIL
revised by the writer) counts the revision's calls inside the writer's unit, not in between.

With --walk, the bound of a scheduler that keeps what the walk's order means today and changes
only how many units are in flight: the phases from the first one marked `walk: production` wait
for every unit of the phases before them (every scene validated, continued and planned before any
is produced), and a scene's unit of a step that reads a kind `all_targets` (skill.json: the cost
loop's model-router and budget-gates read every scene's SHOTLIST and QC_BATCH) waits for every
unit of earlier scenes that writes that kind (each scene's cost loop reads the earlier scenes'
production results, so production is a chain of scenes). The ratio of the two bounds is what the
policy decisions of docs/architecture.md ("Not built: a scheduler that fills the pipe") are worth.

Prints one line: `bound_s=<seconds> units=<n> calls=<n> longest=<unit> ...` (the last unit of the
longest path, and the path's units with their calls).
"""
import json
import os
import re
import sqlite3
import sys

SHOT = re.compile(r"^(S\d+)_SH\d+$")
SCENE = re.compile(r"^S\d+$")


def main():
    args = [a for a in sys.argv[1:] if a != "--walk"]
    walk = "--walk" in sys.argv[1:]
    if len(args) != 2:
        raise SystemExit("usage: critical_path.py PROJECT_DIR LATENCY_MS [--walk]")
    project, latency_ms = args[0], float(args[1])
    graph_path = os.path.join(project, "policies", "stage_graph.json")
    if not os.path.exists(graph_path):
        graph_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "policies", "stage_graph.json")
    graph = json.load(open(graph_path))

    steps = {}  # id -> {skill, phase, fan, resolution, index, order}
    phase_steps = {}
    by_skill = {}
    for index, phase in enumerate(graph["phases"]):
        for step in phase["steps"]:
            skill = step.get("skill") or ("generate" if step.get("action") == "generate_media" else "")
            steps[step["id"]] = {"skill": skill, "phase": phase["name"], "fan": phase.get("fan_out", "once"),
                                 "resolution": phase.get("resolution", ""), "order": phase.get("order", ""),
                                 "phase_index": index}
            phase_steps.setdefault(phase["name"], []).append(step["id"])
            by_skill.setdefault(skill, []).append(step["id"])

    # The walk's own order (--walk): where production starts, and which steps read which kinds
    # of every scene (skill.json inputs with slice all_targets) and which steps write them.
    production_from = next((i for i, p in enumerate(graph["phases"]) if p.get("walk") == "production"),
                           len(graph["phases"]))
    skills_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "skills")
    reads_all, writes = {}, {}
    for skill in by_skill:
        path = os.path.join(project, "skills", skill, "skill.json")
        if not os.path.exists(path):
            path = os.path.join(skills_dir, skill, "skill.json")
        if not os.path.exists(path):
            continue  # an action (generate), not a skill
        definition = json.load(open(path))
        reads_all[skill] = [i["kind"] for i in definition.get("inputs", []) if i.get("slice") == "all_targets"]
        for output in definition.get("outputs", []):
            writes.setdefault(output.get("kind"), []).extend(by_skill[skill])

    def resolve(name):
        if name in steps:
            return name
        return by_skill.get(name, [None])[0]

    # Calls per unit, from the recorded intents: "<skill> <label>".
    db = sqlite3.connect(f"file:{os.path.join(project, '.avps', 'ledger.db')}?mode=ro", uri=True)
    calls = {}
    contexts = {"once": {""}, "per_entity": set(), "per_scene": set(), "per_shot": set()}
    total = 0
    for (body,) in db.execute("SELECT body FROM events WHERE kind = 'exchange.intent' ORDER BY seq"):
        words = json.loads(body).get("skill", "").split(" ")
        skill, rest = words[0], words[1:]
        if skill == "storyboard":
            skill = "storyboard-generator"  # the frame is drawn for the review, before it
        ctx = rest[0] if rest and rest[0] != "page" else ""
        resolution = "final" if any("final" in w for w in rest) else "proxy" if SHOT.match(ctx) else ""
        fan = "per_shot" if SHOT.match(ctx) else "per_scene" if SCENE.match(ctx) else "once" if ctx == "" else "per_entity"
        candidates = [s for s in by_skill.get(skill, []) if steps[s]["fan"] == fan and
                      (fan != "per_shot" or steps[s]["resolution"] == resolution)]
        if not candidates:
            continue  # a call of no graph step (an on-demand skill): not on any path the graph knows
        unit = (candidates[0], ctx)
        calls[unit] = calls.get(unit, 0) + 1
        contexts[fan].add(ctx)
        total += 1
    for shot in list(contexts["per_shot"]):
        contexts["per_scene"].add(SHOT.match(shot).group(1))
    scenes = sorted(contexts["per_scene"], key=lambda s: int(s[1:]))
    scene_rank = {s: i for i, s in enumerate(scenes)}
    shots_of = {}
    for shot in sorted(contexts["per_shot"]):
        shots_of.setdefault(SHOT.match(shot).group(1), []).append(shot)

    def units_of(step_id):
        fan = steps[step_id]["fan"]
        return [(step_id, c) for c in sorted(contexts[fan])]

    def scene_of(ctx):
        m = SHOT.match(ctx)
        return m.group(1) if m else ctx

    def sources(step_id, ctx):
        """The units (step, ctx) feeds on."""
        out = []
        fan = steps[step_id]["fan"]
        scene_level = fan in ("per_scene", "per_shot")
        for edge in graph["edges"]:
            to, frm = resolve(edge["to"]), resolve(edge["from"])
            if to != step_id or frm is None:
                continue
            from_fan = steps[frm]["fan"]
            if scene_level and from_fan in ("per_scene", "per_shot"):
                scene = scene_of(ctx)
                if edge.get("across") == "previous_scene":
                    rank = scene_rank.get(scene, 0) - 1
                    if rank < 0:
                        continue
                    scene = scenes[rank]
                if from_fan == "per_scene":
                    out.append((frm, scene))
                elif fan == "per_shot" and edge.get("across") != "previous_scene":
                    out.append((frm, ctx))
                else:
                    out += [(frm, s) for s in shots_of.get(scene, [])]
            else:
                out += units_of(frm)
        step = steps[step_id]
        if scene_level and step["order"] == "scene_order" and scene_rank.get(scene_of(ctx), 0) > 0:
            previous = scenes[scene_rank[scene_of(ctx)] - 1]
            out += [(s, previous) for s in phase_steps[step["phase"]]]
        if fan == "per_shot":
            ids = phase_steps[step["phase"]]
            at = ids.index(step_id)
            if at > 0:
                out.append((ids[at - 1], ctx))
        if walk and step["phase_index"] >= production_from:
            for earlier in graph["phases"][:production_from]:
                for s in phase_steps[earlier["name"]]:
                    out += units_of(s)
        if walk and scene_level:
            rank = scene_rank.get(scene_of(ctx), 0)
            for kind in reads_all.get(step["skill"], []):
                for writer in writes.get(kind, []):
                    out += [u for u in units_of(writer) if scene_rank.get(scene_of(u[1]), rank) < rank]
        return out

    finish = {}
    via = {}

    def eft(unit, depth=0):
        if unit in finish:
            return finish[unit]
        if depth > 5000:
            raise SystemExit("the stage graph has a cycle")
        start, before = 0.0, None
        for source in sources(*unit):
            t = eft(source, depth + 1)
            if t > start:
                start, before = t, source
        finish[unit] = start + calls.get(unit, 0) * latency_ms / 1000.0
        via[unit] = before
        return finish[unit]

    sys.setrecursionlimit(20000)
    every = [u for s in steps for u in units_of(s)]
    last = max(every, key=eft) if every else None
    path = []
    while last is not None:
        if calls.get(last, 0):
            path.append(f"{last[0]}{'@' + last[1] if last[1] else ''}x{calls[last]}")
        last = via[last]
    bound = max((finish[u] for u in every), default=0.0)
    path_calls = sum(int(p.rsplit("x", 1)[1]) for p in path)
    print(f"bound_s={bound:.2f} units={len(every)} calls={total} path_calls={path_calls} "
          f"path={' <- '.join(path)}")


if __name__ == "__main__":
    main()
