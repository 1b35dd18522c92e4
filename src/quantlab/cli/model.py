"""`quantlab model list`: every registered version, its aliases, metrics and the gate's decision;
`quantlab model promote VERSION`: a person's override of the gate, recorded as such;
`quantlab model rollback`: the previous champion back, in one command."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from quantlab.context import RunContext


def _names(ctx: RunContext, args: argparse.Namespace) -> list[str]:
    """The models a command is about: --name, else every model this config registers."""
    from quantlab.lifecycle.promote import registry

    if args.name:
        return [args.name]
    cfg = ctx.config
    prefixes = [p for p in (cfg.train.register_as, cfg.lifecycle.regime.register_as) if p]
    found = registry(ctx).names()
    return [n for n in found if any(n == p or n.startswith(p + "-") for p in prefixes)]


def _person() -> str:
    try:
        return f"person:{getpass.getuser()}"
    except OSError:  # no user name in this environment (a container without one)
        return "person"


def _row(ref: Any) -> dict[str, Any]:
    t = ref.tags
    return {
        "model": ref.name,
        "version": ref.version,
        "aliases": list(ref.aliases),
        "mode": ref.meta("mode"),
        "trained_on": json.loads(ref.meta("inputs", "{}") or "{}"),
        "train_end": ref.meta("train_end"),
        "metric": t.get("gate.metric"),
        "value": t.get("gate.challenger_value") or None,
        "champion_value": t.get("gate.champion_value") or None,
        "decision": t.get("gate.decision"),
        "reason": t.get("gate.reason"),
        "dsr": t.get("gate.dsr") or None,
        "shap_stability": t.get("gate.shap_stability") or None,
        "promoted_at": t.get("promoted_at"),
        "promoted_by": t.get("promoted_by"),
        "previous_champion": t.get("previous_champion") or None,
        "uri": ref.uri,
        "code_version": ref.meta("code_version"),
    }


def _cmd_list(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.lifecycle.promote import registry

    reg = registry(ctx)
    names = _names(ctx, args)
    rows = [_row(ref) for name in names for ref in reg.versions(name)]
    if args.json:
        print(json.dumps({"models": rows}, indent=2))
        return 0
    if not rows:
        print(f"no registered models in {ctx.config.tracking.uri}; run `make run` first")
        return 1
    for name in names:
        print(name)
        print(f"  {'ver':>4} {'aliases':<20} {'mode':<11} {'metric':<16} {'decision':<9} reason")
        for r in (r for r in rows if r["model"] == name):
            metric = f"{r['metric']}={r['value']}" if r["metric"] and r["value"] else "-"
            aliases = ",".join(r["aliases"]) or "-"
            print(
                f"  {r['version']:>4} {aliases:<20} {r['mode'] or '-':<11} {metric:<16} "
                f"{r['decision'] or '-':<9} {r['reason'] or ''}"
            )
    return 0


def _record(ctx: RunContext, name: str, version: int, decision: str, by: str, reason: str) -> None:
    from quantlab.lifecycle.promote import decision_row, record

    record(ctx, [decision_row(name, version, decision, by, reason, None, "[]")], [])


def _one_name(ctx: RunContext, args: argparse.Namespace) -> str:
    return args.name or ctx.config.train.register_as or ""


def _cmd_promote(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.lifecycle.promote import prefetch_champion, registry

    reg = registry(ctx)
    name = _one_name(ctx, args)
    ref = reg.version(name, args.version)
    current = reg.champion(name)
    if current is not None and current.version == ref.version:
        print(f"{ref} is already champion")
        return 0
    by = _person()
    reason = args.reason or "a person's override of the gate"
    reg.set_tags(name, ref.version, {"override": reason, "override_by": by})
    previous = reg.set_champion(name, ref.version, by=by)
    prefetch_champion(ctx, reg, name)
    was = "none" if previous is None else f"v{previous.version}"
    _record(ctx, name, ref.version, "override", by, f"{reason} (champion was {was})")
    gate = ref.tags.get("gate.decision")
    print(
        f"{ref} is champion (override by {by}; champion was {was}; "
        f"the gate had said: {gate or 'nothing yet'})"
    )
    return 0


def _cmd_rollback(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.lifecycle.promote import prefetch_champion, registry

    reg = registry(ctx)
    name = _one_name(ctx, args)
    by = _person()
    current, restored = reg.rollback(name, by=by)
    prefetch_champion(ctx, reg, name)  # the next predict reads a local file
    _record(ctx, name, restored.version, "rollback", by, f"rolled back from v{current.version}")
    print(f"{name}: champion v{current.version} rolled back to v{restored.version} (by {by})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="the model registry: list, promote, rollback")
    msub = p.add_subparsers(dest="model_command", required=True)
    ls = msub.add_parser("list", help="versions, aliases, metrics and the gate's decisions")
    ls.add_argument("--name", help="one registered model (default: every model this config trains)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_cmd_list)
    pr = msub.add_parser("promote", help="make VERSION champion: a person's override")
    pr.add_argument("version", type=int)
    pr.add_argument("--name", help="registered model (default: train.register_as)")
    pr.add_argument("--reason", help="why, recorded on the version and in model_decisions")
    pr.set_defaults(func=_cmd_promote)
    rb = msub.add_parser("rollback", help="restore the previous champion")
    rb.add_argument("--name", help="registered model (default: train.register_as)")
    rb.set_defaults(func=_cmd_rollback)
