"""`imgsim`: the engine from a terminal. Human output by default, `--json` for scripts."""

from __future__ import annotations

import argparse
import contextlib
import errno
import faulthandler
import os
import shutil
import signal
import sqlite3
import sys
import time

from imgsim_desktop import __version__, paths
from imgsim_desktop.cli_cleanup import (
    _engine,
    cmd_duplicates,
    cmd_history,
    cmd_restore_catalog,
    cmd_undo,
)
from imgsim_desktop.terminal import TerminalProgress, json_line, positive_int, positive_seconds, shown, unit_fraction


def cmd_index(args) -> int:
    from imgsim_desktop.core.library_service import LibraryService
    from imgsim_desktop.core.progress import Progress

    with _engine(args) as engine:  # the library service's run-once: the same writer the app and `watch` use
        bar = TerminalProgress(not args.json)
        report = LibraryService(engine=engine, watch=False).run_once(args.paths, Progress(bar), retry_failed=args.retry_failed, rebuild=args.rebuild)
        bar.finish()
        known = _known_unreadable(engine.catalog, args.paths, report)
    out = report.to_json() | {"known_unreadable": known}
    if args.json:
        print(json_line(out))
    else:
        for err in report.errors:
            print(f"skipped {shown(err['path'])}: {shown(err['error'])}", file=sys.stderr)
        for path in report.missing:
            print(f"not found: {shown(path)}", file=sys.stderr)
        for name, how in sorted({(u["format"], u["how"]) for u in report.unsupported}):
            count = sum(u["format"] == name for u in report.unsupported)
            print(f"skipped {count} {name} photo{'s' * (count != 1)}: reading them needs {how}", file=sys.stderr)
        print(
            f"indexed {report.indexed}, unchanged {report.skipped}, removed {report.removed}, errors {len(report.errors)}{_index_summary_tail(report, known)} "
            f"in {report.seconds:.1f}s " + (f"with {engine.spec.title} on {report.provider}" if report.provider else f"({engine.spec.title} not loaded: nothing to embed)")
        )
    return 1 if report.missing and not (report.indexed or report.skipped) else 0


def _known_unreadable(catalog, roots: list[str], report) -> int:
    """Files under ``roots`` that failed on an earlier run and were not tried again now (unchanged):
    the summary says they were skipped, so "errors 0" never hides what `imgsim status` lists."""
    tried = {err["path"] for err in report.errors}
    under = [os.path.abspath(r) for r in roots]
    return sum(
        1
        for path, _ in catalog.errors()
        if path not in tried and any(paths.lexically_inside(path, r) for r in under)
    )


def _index_summary_tail(report, known: int) -> str:
    tail = ""
    if known:
        them = "them" if known != 1 else "it"
        tail += (
            f" (of the unchanged, {known} could not be read before and {'were' if known != 1 else 'was'} skipped: "
            f"`imgsim status` lists {them}, --retry-failed tries {them} again)"
        )
    if report.missing:
        tail += f", not found {len(report.missing)}"
    return tail


def cmd_similar(args) -> int:
    from imgsim_desktop.core.decode import DecodeError

    status = 0
    with _engine(args) as engine:
        for image in args.images:
            try:
                results = engine.similar(image, args.k)
            except (DecodeError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                status = 1
                if args.json:
                    print(json_line({"query": os.path.abspath(image), "error": reason, "results": []}))
                else:
                    print(f"{shown(image)}: {shown(reason)}", file=sys.stderr)
                continue
            if args.json:
                print(json_line({"query": os.path.abspath(image), "results": [{"path": r.path, "score": round(r.score, 4)} for r in results]}))
            else:
                print(f"{shown(image)}:")
                for r in results:
                    print(f"  {r.score:6.3f}  {shown(r.path)}")
                if not results:
                    print("  (library is empty for this model: run `imgsim index FOLDER` first)")
    return status


def cmd_models(args) -> int:
    from imgsim_desktop.core.backbones import ModelError, add_user_model, list_models

    data_dir = paths.data_dir(args.data_dir)
    if args.models_cmd == "add":
        try:
            spec = add_user_model(
                data_dir,
                args.name,
                args.file,
                input_size=args.input_size,
                mean=args.mean,
                std=args.std,
                resize=args.resize,
                resize_mode=args.resize_mode,
                output=args.output,
            )
        except ModelError as exc:  # refused: one line, nothing changed
            print(f"imgsim: {shown(exc)}", file=sys.stderr)
            return 2
        if args.json:
            print(json_line({"added": spec.name, "embedding_dim": spec.embedding_dim, "output": spec.embedding_output, "path": str(spec.path)}))
        else:
            print(f"added {spec.name}: {spec.embedding_dim}-d embedding from output '{spec.embedding_output}'")
        return 0
    specs = list_models(data_dir)
    if args.json:  # one object per model and line, like every command's --json
        for s in specs:
            print(
                json_line(
                    {
                        "name": s.name,
                        "title": s.title,
                        "installed": s.installed,
                        "default": s.default,
                        "embedding_dim": s.embedding_dim,
                        "input_size": s.preprocess.input_size,
                        "licence": s.licence,
                        "source": s.source,
                        "install": None if s.installed else s.install_hint,
                    }
                )
            )
        return 0
    # Columns as wide as their longest value (nothing cut); each missing model's command on a line of its own, to copy whole.
    name_w = max((len(s.name) for s in specs), default=0)
    licence_w = max((len(s.licence) for s in specs), default=0)
    for s in specs:
        mark = "*" if s.default else " "
        state = "installed" if s.installed else "not installed"
        print(f"{mark} {s.name:{name_w}}  {s.embedding_dim:5}-d  {s.preprocess.input_size:3}px  {s.licence:{licence_w}}  {state}".rstrip())
        if not s.installed:
            print(f"    add it with: {s.install_hint}")
    if specs:
        print("* = default backbone")
    return 0


def cmd_status(args) -> int:
    from imgsim_desktop.core.backbones import Backbone, ModelError, get_model
    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.annoy_store import AnnoyStore
    from imgsim_desktop.storage.catalog import Catalog

    data_dir = paths.data_dir(args.data_dir)
    with Catalog(data_dir / CATALOG_NAME) as catalog:
        stats = catalog.stats()
        errors = catalog.errors()
    spec = get_model(args.model, data_dir)
    try:  # a damaged model is part of the answer: the library is there all the same
        provider, model_problem = Backbone(spec, device=args.device, threads=args.threads).provider, None
    except ModelError as exc:
        provider, model_problem = None, str(exc)
    store = AnnoyStore(paths.Layout(data_dir).indexes, spec.name, spec.embedding_dim)
    index_meta, index_problem = store._current(), store.check()
    out = {
        "version": __version__,
        "data_dir": str(data_dir),
        **stats,
        "model": spec.name,
        "provider": provider,
        "model_problem": model_problem,
        "annoy_index": index_meta,
        "annoy_index_problem": index_problem,
    }
    if args.json:
        out["error_files"] = [{"path": p, "error": e} for p, e in errors]
        print(json_line(out))
        return 0
    print(f"data dir:  {data_dir}")
    print(f"folders:   {', '.join(map(shown, stats['roots'])) or '(none yet: imgsim index FOLDER)'}")
    print(f"photos:    {stats['files']} ({stats['errors']} could not be read)")
    for model, count in sorted(stats["embeddings"].items()):
        print(f"embedded:  {count} with {model}")
    if model_problem:
        print(f"model:     {spec.title} CANNOT BE USED: {shown(model_problem)}; indexing stops until it is reinstalled")
    else:
        print(f"model:     {spec.title} on {provider}")
    if index_problem:
        print(f"index:     DAMAGED: {shown(index_problem)}; searches are exact until `imgsim index FOLDER --rebuild`")
    elif index_meta:
        print(f"index:     Annoy, {index_meta['count']} vectors, {index_meta['n_trees']} trees, generation {index_meta['generation']}")
    else:
        print("index:     exact search (no Annoy index needed yet)")
    for p, e in errors[:20]:
        print(f"  unreadable: {shown(p)}: {shown(e)}")
    return 0


def cmd_watch(args) -> int:
    """Reconcile the folders, then keep the library current until Ctrl+C: one line per batch."""

    from imgsim_desktop.core.library_service import LibraryService

    def emit(event: str, human: str, **fields) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(json_line({"event": event, "time": stamp, **fields}) if args.json else f"{stamp} {shown(human)}", flush=True)

    def on_batch(kind: str, report) -> None:
        for err in report.errors:
            if not args.json:
                print(f"{time.strftime('%H:%M:%S')} skipped {shown(err['path'])}: {shown(err['error'])}", file=sys.stderr, flush=True)
        for path in report.missing:
            emit("missing", f"not found: {path}", path=path)
        counts = f"indexed {report.indexed}, moved {report.moved}, copied {report.copied}, removed {report.removed}, errors {len(report.errors)}"
        title = "start-up check" if kind == "reconcile" else "changes"
        emit(kind, f"{title}: {counts}{', unchanged ' + str(report.skipped) if kind == 'reconcile' else ''} in {report.seconds:.1f}s", **report.to_json())

    missing = [p for p in args.paths if not os.path.isdir(p)]
    if missing:
        print(f"imgsim: not a folder: {', '.join(map(shown, missing))}", file=sys.stderr)
        return 2
    with _engine(args) as engine:
        service = LibraryService(
            engine=engine,
            roots=args.paths,
            on_report=on_batch,
            on_mode=lambda m: emit("mode", m.describe(), mode=m.mode, reason=m.reason, poll_interval=m.poll_interval),
            on_rebuild=lambda meta: emit("index_rebuilt", f"search index rebuilt: {meta['count']} photos", **meta),
            on_error=lambda message: emit("error", message, message=message),
            polling=args.poll is not None,
            poll_interval=args.poll or 10.0,
        )
        # Until Ctrl+C, or SIGTERM (a service manager's stop; also the way to stop a `watch &`, whose
        # shell ignores SIGINT for it). The watcher works on its own threads. The handler only sets
        # a flag: taking a lock there (Event.set) could deadlock with the interrupted main thread.
        terminated: list[int] = []
        previous = signal.signal(signal.SIGTERM, lambda signum, _frame: terminated.append(signum))
        try:
            service.start()
            while not terminated:
                time.sleep(0.25)
        except KeyboardInterrupt:
            pass
        finally:
            try:
                with contextlib.suppress(OSError):  # a closed pipe (`watch --json | jq`) must not skip the stop
                    emit("stopping", "stopping…")
            finally:
                service.stop()
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    with contextlib.suppress(OSError):
        emit("stopped", "stopped; anything changed from now on is caught up by the next start")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from imgsim_desktop.core.keeper import DEFAULT_ORDER, RULES

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help=f"library data folder (default: ${paths.DATA_DIR_ENV} or the platform's user data dir)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto", help="inference device (default auto: CUDA if present)")
    common.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    with_model = argparse.ArgumentParser(add_help=False)
    with_model.add_argument("--model", help="backbone name (see `imgsim models`); default efficientnet-lite0")

    parser = argparse.ArgumentParser(prog="imgsim", description="Find visually similar photos and near-duplicates.")
    parser.add_argument("--version", action="version", version=f"imgsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", parents=[common, with_model], help="add folders to the library and index them")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--retry-failed", action="store_true", help="try every file that failed before again, changed or not (unreadable files are retried anyway)")
    p.add_argument("--rebuild", action="store_true", help="also rebuild the search index from the catalog (after damage; it is checked on every load)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("similar", parents=[common, with_model], help="photos most like the given image(s)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-k", type=positive_int, default=10, help="number of results per query (default 10)")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("duplicates", parents=[common, with_model], help="groups of near-identical photos")
    p.add_argument(
        "--sensitivity",
        type=unit_fraction,
        default=None,
        help="0 (strict: only the most certain) to 1 (loose: looks at more candidates, judged as at 0.5); default 0.5",
    )
    p.add_argument("--tier", action="append", choices=["exact", "duplicate", "similar"], help="only these tiers (repeatable); --apply then acts on them")
    p.add_argument("--not-duplicates", nargs=2, metavar=("A", "B"), help="remember that A and B are not duplicates; they never group again")
    p.add_argument("--undo", action="store_true", help="with --not-duplicates: forget that choice")
    p.add_argument("--keep", default=",".join(DEFAULT_ORDER), help=f"keeper rules in order (default {','.join(DEFAULT_ORDER)}; known: {','.join(RULES)})")
    p.add_argument("--prefer-folder", action="append", default=[], metavar="DIR", help="keep copies in this folder first")
    p.add_argument("--protect", action="append", default=[], metavar="DIR", help="never remove anything inside this folder")
    p.add_argument("--pairs", choices=["both", "raw", "jpeg"], default="both",
                   help="a RAW+JPEG pair (same name, same moment) is one shot: keep both (default), only the RAW or only the JPEG; "
                        "a removed photo's sidecars, Live Photo video and (unless kept) the other half of its pair go with it")  # fmt: skip
    p.add_argument("--apply", nargs="+", metavar="trash|move DIR", help="do the cleanup: move suggested copies to the trash or into DIR")
    p.add_argument("--keep-metadata", action="store_true",
                   help="with --apply: write what the removed copies carry and the keeper lacks (date taken, GPS, keywords, rating, title) "
                        "into the keeper's XMP sidecar (created or merged; the photo file is never changed); undone with the cleanup")  # fmt: skip
    p.set_defaults(func=cmd_duplicates)

    p = sub.add_parser("restore-catalog", parents=[common], help="replace a damaged catalog by its backup (made daily and after each cleanup)")
    p.set_defaults(func=cmd_restore_catalog)

    p = sub.add_parser("history", parents=[common], help="what cleanups moved or trashed, newest first")
    p.add_argument("--limit", type=int, default=20, help="steps shown per cleanup (default 20)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("undo", parents=[common], help="move the photos of one cleanup back where they were")
    p.add_argument("batch", help="the cleanup's batch id (see `imgsim history`)")
    p.set_defaults(func=cmd_undo)

    p = sub.add_parser("models", parents=[common], help="list backbones, or add your own ONNX model")
    msub = p.add_subparsers(dest="models_cmd")
    a = msub.add_parser("add", parents=[common], help="register an ONNX image model (N x 3 x H x W input)")
    a.add_argument("name", help="a plain name for the model: 1-64 letters, digits, '-', '_' or '.', not starting with '.' (not a path)")
    a.add_argument("file", type=_path, help="the .onnx file; it is copied into the data folder once it passes the checks")
    a.add_argument("--input-size", type=int, required=True)
    a.add_argument("--mean", type=float, nargs=3, default=[123.675, 116.28, 103.53], help="per-channel mean in 0-255 units (default ImageNet)")
    a.add_argument("--std", type=float, nargs=3, default=[58.395, 57.12, 57.375], help="per-channel std in 0-255 units (default ImageNet)")
    a.add_argument("--resize", type=int, help="shorter side before the centre crop (default: input size)")
    a.add_argument("--resize-mode", choices=["shorter_side_center_crop", "stretch"], default="shorter_side_center_crop")
    a.add_argument("--output", help="output to use as the embedding (default: the first)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("status", parents=[common, with_model], help="what the library holds")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("watch", parents=[common, with_model], help="keep folders' photos indexed as they change (Ctrl+C stops)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--poll", type=positive_seconds, metavar="SECONDS", help="check for changes every SECONDS instead of native file-system events")
    p.set_defaults(func=cmd_watch)

    from imgsim_desktop.research.commands import add_research_parsers  # eval perturb / eval map / report

    add_research_parsers(sub, common, with_model)
    return parser


def _path(text: str):
    from pathlib import Path

    return Path(text).expanduser()


def _disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "database or disk is full" in str(exc)


def _disk_full_message(data_dir) -> str:
    """One line: how much space is left, and what can be deleted without losing anything."""
    from imgsim_desktop.storage.disk_cache import folder_bytes

    free = shutil.disk_usage(data_dir).free
    caches = [(name, folder_bytes(data_dir / name)) for name in paths.Layout.CACHES]
    spare = ", ".join(f"{data_dir / name} ({size / 1e6:,.0f} MB)" for name, size in caches if size)
    tail = f" These caches can be deleted safely (they are made again when needed): {spare}." if spare else ""
    return f"the disk holding {data_dir} is full ({free / 1e6:,.0f} MB free); what was committed before is kept.{tail}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID` prints every thread's stack: for a run that seems stuck
        with contextlib.suppress(OSError, ValueError):  # no real stderr (called in-process, as tests do)
            faulthandler.register(signal.SIGUSR1, all_threads=True)
    if getattr(args, "sensitivity", 0) is None:
        from imgsim_desktop.core.duplicates import DEFAULT_SENSITIVITY

        args.sensitivity = DEFAULT_SENSITIVITY
    from imgsim_desktop.core.backbones import ModelError
    from imgsim_desktop.storage.catalog import CatalogError, restore_hint

    try:
        return args.func(args)
    except BrokenPipeError:  # `imgsim duplicates --json | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 0
    except (ModelError, CatalogError) as exc:
        print(f"imgsim: {shown(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if _disk_full(exc):
            print(f"imgsim: {_disk_full_message(paths.data_dir(getattr(args, 'data_dir', None)))}", file=sys.stderr)
            return 2
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and exc.filename:
            # the data folder on a read-only disk, or not ours to write: say which file, no traceback
            print(f"imgsim: cannot write {shown(exc.filename)}: {exc.strerror}; nothing was changed", file=sys.stderr)
            return 2
        raise
    except sqlite3.DatabaseError as exc:  # pages scribbled over: say so, and what brings the library back
        if _disk_full(exc):
            print(f"imgsim: {_disk_full_message(paths.data_dir(getattr(args, 'data_dir', None)))}", file=sys.stderr)
            return 2
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        catalog = paths.Layout(paths.data_dir(getattr(args, "data_dir", None))).catalog
        if "readonly" in str(exc):  # a read-only disk or folder: the catalog is whole, only not writable
            print(f"imgsim: cannot write the catalog {shown(catalog)}: its disk or folder is read-only ({exc}); nothing was changed", file=sys.stderr)
            return 2
        print(f"imgsim: the catalog {shown(catalog)} is damaged ({exc}); nothing was changed. {restore_hint(catalog)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command in ("duplicates", "undo"):
            message = "interrupted; the file in hand is finished or put back at the next start, and `imgsim history` lists what moved"
        else:
            message = "interrupted; finished batches are saved, run the same command again to resume"
        print(f"\nimgsim: {message}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
