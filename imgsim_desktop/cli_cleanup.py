"""`imgsim duplicates`, `history`, `undo` and `restore-catalog`: finding copies and cleaning up
from a terminal. Split from cli.py, which builds the parser and runs the commands."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from imgsim_desktop import paths
from imgsim_desktop.terminal import TerminalProgress, human_size, json_line, shown


def _engine(args):
    from imgsim_desktop.core.engine import Engine

    engine = Engine(args.data_dir, model=getattr(args, "model", None), device=args.device, threads=args.threads)
    _report_recovery(engine.catalog)
    return engine


def _report_recovery(catalog) -> None:
    """A cleanup killed earlier (kill -9, power cut) is completed or rolled back before anything else."""
    from imgsim_desktop.core import cleanup

    for note in cleanup.recover(catalog):
        print(f"imgsim: {shown(note)}", file=sys.stderr)


def cmd_duplicates(args) -> int:
    from imgsim_desktop.core import cleanup, cleanup_plan, companions
    from imgsim_desktop.core.duplicates import find_groups
    from imgsim_desktop.core.keeper import KeeperRules
    from imgsim_desktop.core.progress import Progress

    if args.not_duplicates:
        return _reject_pair(args)
    if args.keep_metadata and not args.apply:
        print("imgsim: --keep-metadata works with --apply (it writes the removed copies' metadata into their keeper's sidecar)", file=sys.stderr)
        return 2
    mode, dest = None, None
    if args.apply:
        mode, *rest = args.apply
        if mode not in ("trash", "move") or (mode == "move") != bool(rest) or len(rest) > 1:
            print("imgsim: --apply takes 'trash' or 'move DIR'", file=sys.stderr)
            return 2
        dest = os.path.abspath(rest[0]) if rest else None
    try:
        rules = KeeperRules(
            order=[r.strip() for r in args.keep.split(",") if r.strip()],
            preferred_folders=[os.path.abspath(p) for p in args.prefer_folder],
            protected_folders=[os.path.abspath(p) for p in args.protect],
            pair_rule=args.pairs,
        )
    except ValueError as exc:
        print(f"imgsim: --keep: {exc}", file=sys.stderr)
        return 2
    # Listing shows every tier; cleanup acts on exact copies and duplicates unless similar shots are asked for.
    shown_tiers = args.tier or ["exact", "duplicate", "similar"]
    applied_tiers = set(args.tier or ["exact", "duplicate"])
    unreadable: list[tuple[str, str]] = []
    with _engine(args) as engine:
        if dest:  # refused before the scan, not after minutes of it
            problem = cleanup.check_destination(dest, engine.catalog.roots(), rules.protected_folders)
            if problem:
                print(f"imgsim: {shown(problem)}; nothing was changed", file=sys.stderr)
                return 2
        bar = TerminalProgress(not args.json)
        groups = find_groups(engine.searcher, args.sensitivity, shown_tiers, Progress(bar), on_error=lambda p, r: unreadable.append((p, r)))
        bar.finish()
        groups = companions.attach(groups, companions.library_folders(engine.catalog))
        rows = {m.path: row for g in groups for m in g.members if (row := engine.catalog.photo(m.path)) is not None}
        doomed = cleanup_plan.suggested(groups, rows, rules, applied_tiers)
        to_remove = [m.path for g in groups for m in g.members if m.path in doomed]
        along = companions.planned(to_remove, {m.path: m.companions for g in groups for m in g.members}, rules.pair_rule)
        plan = [_group_plan(group, rows, doomed, rules, along) for group in groups]
        result = None
        if mode:
            removals = cleanup_plan.plan(groups, rows, doomed, engine.catalog.fingerprints(list(rows)))
            try:
                with _stop_on_ctrl_c(not args.json) as stop:
                    result = cleanup.apply(engine.catalog, removals, mode, dest, rules.protected_folders, should_stop=stop, pair_rule=rules.pair_rule,
                                           keep_metadata=args.keep_metadata)  # fmt: skip
            except cleanup.CleanupRefused as exc:
                print(f"imgsim: {shown(exc)}; nothing was changed", file=sys.stderr)
                return 2
    if args.json:
        out = {"sensitivity": args.sensitivity, "keep_rules": rules.order, "pair_rule": rules.pair_rule, "groups": plan}
        out["unreadable"] = [{"path": p, "error": r} for p, r in unreadable]
        if result is not None:
            out["applied"] = {"batch": result.batch, "done": result.done, "failed": result.failed, "refused": result.refused,
                              "skipped": result.skipped, "stopped": result.stopped, "recovered": result.recovered, "metadata": result.metadata}  # fmt: skip
        print(json_line(out))
    else:
        _print_plan(plan, to_remove, [c.kind for cs in along.values() for c in cs], result, args.sensitivity, unreadable)
    return 1 if result is not None and (result.failed or result.stopped) else 0


def _group_plan(group, rows: dict, doomed: set[str], rules, along: dict) -> dict:
    from imgsim_desktop.core.cleanup_plan import keeper_of
    from imgsim_desktop.core.companions import partners

    members = [rows[m.path] for m in group.members if m.path in rows]
    pairs = partners(group.members)
    keeper, _remove, best_because = keeper_of(group, members, rules)
    return {
        "tier": group.tier,
        **({"best_shot": keeper.path, "best_shot_reason": best_because} if best_because else {}),
        "members": [
            {
                "path": m.path,
                "score": m.score,
                "keep": m.path not in doomed,
                "suggested_keeper": m.path == keeper.path,
                "reason": _reason(group, m.path, keeper.path, rows),  # relative to the suggested keeper
                "pair": pairs.get(m.path),  # the other half of its RAW+JPEG pair, in the group or not
                "companions": [{"kind": c.kind, "path": c.path} for c in m.companions],
                "goes_along": [c.path for c in along.get(m.path, ())],  # what a removal takes with it
            }
            for m in group.members
        ],
    }


@contextlib.contextmanager
def _stop_on_ctrl_c(tell: bool):
    """During a cleanup, Ctrl+C stops after the file in hand (a second one interrupts at once:
    the journal makes even that recoverable). Yields the 'stop now?' question for cleanup.apply."""
    asked: list[int] = []

    def handler(signum, _frame) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)
        if tell:
            print("\nimgsim: stopping after this file…", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (called in-process): no handler, no stopping
        yield lambda: False
        return
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


TIER_TITLES = {"exact": "exact copies", "duplicate": "duplicates", "similar": "similar shots"}


def _reason(group, path: str, keeper: str, rows: dict) -> dict:
    """Why ``path`` is in the group, relative to the suggested keeper: a sentence and its numbers."""
    from imgsim_desktop.core import explain

    rel = explain.in_group(group, path, keeper, rows)
    return {"text": explain.describe(rel, rows.get(path), rows.get(keeper))} | explain.facts(rel)


def _print_plan(plan: list[dict], to_remove: list[str], along: list[str], result, sensitivity: float, unreadable: list[tuple[str, str]]) -> None:
    from imgsim_desktop.core.companions import noun, with_companions

    for path, reason in unreadable:
        print(f"could not check {shown(path)}: {shown(reason)}", file=sys.stderr)
    for n, group in enumerate(plan, 1):
        paired = {m["path"] for m in group["members"]} & {m["pair"] for m in group["members"]}
        one_shot = ", a RAW+JPEG pair: one shot" if paired else ""
        best = f"; best shot: {shown(os.path.basename(group['best_shot']))}, {group['best_shot_reason']}" if group.get("best_shot") else ""
        print(f"group {n}: {TIER_TITLES[group['tier']]} ({len(group['members'])} photos{one_shot}{best})")
        for m in group["members"]:
            action = "keep  " if m["keep"] else "remove"
            print(f"  {m['score']:6.3f}  {action}{'*' if m['suggested_keeper'] else ' '} {shown(m['path'])}")
            if not m["suggested_keeper"]:
                print(f"                  {shown(m['reason']['text'])}")
            kinds = {c["path"]: c["kind"] for c in m["companions"]}
            if m["goes_along"]:
                print("                  with " + ", ".join(f"{shown(os.path.basename(p))} ({noun(kinds[p])})" for p in m["goes_along"]))
            elif m["pair"]:
                print(f"                  one shot with {shown(os.path.basename(m['pair']))} ({noun(kinds[m['pair']])}), which stays")
    size = sum(os.path.getsize(p) for p in to_remove if os.path.exists(p)) if result is None else result.bytes_freed
    counts = ", ".join(f"{sum(g['tier'] == t for g in plan)} {title}" for t, title in TIER_TITLES.items())
    suggested = with_companions(f"{len(to_remove)} suggested for removal", along)
    print(f"{counts} at sensitivity {sensitivity}; {suggested} ({human_size(size)}); * = suggested keeper")
    if result is None:
        print("nothing was changed; add --apply trash or --apply move DIR to clean up (similar shots only with --tier similar)")
    else:
        from imgsim_desktop.core.companions import with_companions

        verb = "trashed" if result.done and result.done[0]["action"] == "trash" else "moved"
        attempted = {d["path"] for d in result.done} | {f["path"] for f in result.failed} | {s["path"] for s in result.skipped} | set(result.refused)
        untouched = len(set(to_remove) - attempted)
        stop = f"; stopped, {untouched} not attempted (left in place)" if result.stopped else ""
        what = with_companions(f"{len(result.photos)} photo(s)", result.companion_kinds)
        undoable = any(d["target"] for d in result.done)  # a trashed file's place in the Trash is known on Linux
        print(f"{verb} {what}{stop}; batch {result.batch}" + (f" (undo: imgsim undo {result.batch})" if undoable else ""))
        if verb == "trashed" and not all(d["target"] for d in result.done):
            from imgsim_desktop.core.trash_info import elsewhere_note

            print(f"  not undoable from imgsim: {elsewhere_note()}", file=sys.stderr)
        for m in result.metadata:
            print(f"  kept {', '.join(m['kinds'])} of {len(m['sources'])} removed copy(ies) in {shown(m['sidecar'])}" + (" (new sidecar)" if m["created"] else ""))
        for f in result.failed:
            print(f"  left in place: {shown(f['path'])}: {shown(f['error'])}", file=sys.stderr)
        for f in result.skipped:
            print(f"  skipped: {shown(f['path'])}: {shown(f['reason'])}", file=sys.stderr)
        for p in result.refused:
            print(f"  protected, left alone: {shown(p)}", file=sys.stderr)


def _reject_pair(args) -> int:
    """`--not-duplicates A B`: remember the pair (or forget it again with --undo)."""
    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.catalog import Catalog

    a, b = (os.path.abspath(p) for p in args.not_duplicates)
    with Catalog(paths.data_dir(args.data_dir) / CATALOG_NAME) as catalog:
        if args.undo:
            catalog.unreject_pair(a, b)
        else:
            catalog.reject_pair(a, b)
    verb = "may be grouped again" if args.undo else "will not be grouped again"
    print(json_line({"not_duplicates": [a, b], "undone": args.undo}) if args.json else f"{a} and {b} {verb}")
    return 0


def _companion(step: dict) -> dict:
    """{'companion': kind} for a step that took a photo's companion along; {} for a photo's own."""
    from imgsim_desktop.core.cleanup import companion_kind

    found = companion_kind(step)
    return {"companion": found[0]} if found else {}


def cmd_history(args) -> int:
    """Every finished cleanup, newest first: what went where; moves can be undone with `imgsim undo`."""
    from imgsim_desktop.core.companions import noun
    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.catalog import Catalog

    with Catalog(paths.data_dir(args.data_dir) / CATALOG_NAME) as catalog:
        _report_recovery(catalog)
        batches: dict[str, list[dict]] = {}
        for action in catalog.actions():
            batches.setdefault(action["batch"], []).append(action)
    if args.json:
        for batch, steps in reversed(batches.items()):
            print(json_line({"batch": batch, "steps": [{k: a[k] for k in ("action", "source", "target", "size", "at", "undone_at")} | _companion(a) for a in steps]}))
        return 0
    if not batches:
        print("no cleanups yet")
    for batch, steps in reversed(batches.items()):
        moves = [a for a in steps if a["action"] in ("move", "trash") and a["target"]]  # a trashed file whose place in the Trash is known
        open_moves = [a for a in moves if not a["undone_at"]]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(steps[0]["at"]))
        hint = f"; undo: imgsim undo {batch}" if open_moves else (" (undone)" if moves else "")
        print(f"{batch}  {when}  {len(steps)} step(s){hint}")
        for a in steps[: args.limit]:
            where = f" -> {shown(a['target'])}" if a["target"] else (" -> the system Trash" if a["action"] == "trash" else "")
            kind = _companion(a).get("companion")
            print(f"  {a['action']:8} {shown(a['source'])}{where}{f' ({noun(kind)}, with its photo)' if kind else ''}{' (undone)' if a['undone_at'] else ''}")
        if len(steps) > args.limit:
            print(f"  … and {len(steps) - args.limit} more")
    return 0


def cmd_restore_catalog(args) -> int:
    """Put the catalog's backup (folders, exclusions, files, cleanup history, "not duplicates") in
    place of a damaged catalog; the next `imgsim index` embeds the photos again."""
    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.catalog import Catalog

    path = paths.data_dir(args.data_dir) / CATALOG_NAME
    counts = Catalog.restore(path)
    if args.json:
        print(json_line({"restored": counts}))
    else:
        print(f"restored {counts['roots']} folder(s), {counts['files']} photo record(s) and {counts['actions']} cleanup step(s) from the backup; "
              "the damaged catalog is kept beside it. Run `imgsim index FOLDER` to embed the photos again.")  # fmt: skip
    return 0


def cmd_undo(args) -> int:
    """Move the photos of one cleanup back where they were, from the folder they were moved to or
    from the Trash (Linux: the freedesktop Trash; elsewhere the error says where they are)."""
    from imgsim_desktop.core import cleanup
    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.catalog import Catalog

    with Catalog(paths.data_dir(args.data_dir) / CATALOG_NAME) as catalog:
        _report_recovery(catalog)
        if not catalog.actions(args.batch):
            print(f"imgsim: no cleanup {shown(args.batch)} in the history (see `imgsim history`)", file=sys.stderr)
            return 2
        try:
            restored = cleanup.undo(catalog, args.batch)
        except cleanup.CleanupRefused as exc:
            print(f"imgsim: {shown(exc)}", file=sys.stderr)
            return 2
    from imgsim_desktop.core.companions import with_companions

    back = [r for r in restored if not r["error"]]
    if args.json:
        print(json_line({"batch": args.batch, "restored": restored}))
    else:
        what = with_companions(f"{sum(not r['companion'] and not r.get('metadata') for r in back)} photo(s)", [r["companion"] for r in back if r["companion"]])
        sidecars = sum(bool(r.get("metadata")) for r in back)
        print(f"moved {what} back" + (f"; took the kept metadata out of {sidecars} sidecar(s)" if sidecars else "") + ("" if restored else " (nothing left to undo)"))
        for r in restored:
            if r["error"]:
                print(f"  not restored: {shown(r['path'])}: {shown(r['error'])}", file=sys.stderr)
    return 1 if len(back) < len(restored) else 0
