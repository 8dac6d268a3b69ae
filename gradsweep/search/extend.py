"""Extending a stored study: a changed spec under the same name continues the study when the
change only adds trials, and is refused, naming each differing field, when it would change
a trial already planned.

Adding is: seeds (the first one staying first where an Optuna arm runs on it), GradNorm
αs, static weightings, whole arms, grid points (a finer or wider grid whose points include
the old ones), more random or Optuna trials. Scheduling fields (resources, max_concurrent,
max_failures, budget.trial_timeout) may change freely: they never change a completed
trial's result. Every other field trains differently (problem, objective, budget,
precision, a balancer's settings, the random or Optuna seed, the retrain α) and is
refused.
"""

from __future__ import annotations

from typing import Any

from gradsweep.errors import GradsweepError
from gradsweep.plan.trials import plan_up_front
from gradsweep.spec import StudySpec, arm_order

# Paths (into the spec's JSON) whose change can only add trials: checked by comparing the
# planned keys, old against new, instead of their values.
ADDITIVE = (
    ("study",),
    ("seeds",),
    ("arms", "static", "weights"),
    ("arms", "grid"),
    ("arms", "random", "n"),
    ("arms", "optuna", "n_trials"),
)
SCHEDULING = (
    ("resources",),
    ("max_concurrent",),
    ("max_failures",),
    ("budget", "trial_timeout"),
)
SHOWN_KEYS = 3


class ExtensionError(GradsweepError):
    """A relaunch whose spec changes trials the study already has."""


def _flatten(data: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(data, dict) and data:
        flat: dict[tuple[str, ...], Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, (*path, str(key))))
        return flat
    return {path: data}


def _under(path: tuple[str, ...], prefixes: tuple[tuple[str, ...], ...]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in prefixes)


def _show(value: Any) -> str:
    return "(absent)" if value is None else str(value).replace(" ", "")


def _balancer_arms_only_added_to(old: StudySpec, new: StudySpec) -> set[str]:
    """The balancer arms whose every old configuration is in the new spec unchanged (same
    key label, same arguments): a change there only adds configurations (GradNorm's αs)."""
    now = {arm.key: arm for arm in new.arms.balancer_arms()}
    kept = set()
    for arm in old.arms.balancer_arms():
        if arm.key not in now:
            continue
        later = now[arm.key]
        offered = {c.label: c.arguments for c in later.declaration.configurations_of(later.params)}
        configs = arm.declaration.configurations_of(arm.params)
        if all(offered.get(c.label) == c.arguments for c in configs):
            kept.add(arm.key)
    return kept


def changed_fields(old: StudySpec, new: StudySpec) -> list[str]:
    """Every field whose change alters trials the old spec planned, as ``path old → new``."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    before["problem"]["params"] = old.problem.canonical_params()  # defaults spelt out or not
    after["problem"]["params"] = new.problem.canonical_params()
    order = {arm: i for i, arm in enumerate(arm_order())}  # a user's balancers after
    arms = sorted(before["arms"], key=lambda arm: (order.get(arm, len(order)), arm))
    problems = [
        f"arms.{arm} removed"
        for arm in arms
        if before["arms"][arm] is not None and after["arms"].get(arm) is None
    ]
    kept = _balancer_arms_only_added_to(old, new)
    # an arm added or removed whole: its fields are not compared one by one
    whole = {
        arm
        for arm in before["arms"]
        if (before["arms"][arm] is None) != (after["arms"].get(arm) is None)
    }
    flat_before, flat_after = _flatten(before), _flatten(after)
    for path in sorted(set(flat_before) | set(flat_after)):
        if path[:1] == ("arms",) and len(path) > 1 and (path[1] in whole or path[1] in kept):
            continue
        if _under(path, ADDITIVE + SCHEDULING):
            continue
        was, now = flat_before.get(path), flat_after.get(path)
        if was != now:
            problems.append(f"{'.'.join(path)} {_show(was)} → {_show(now)}")
    old_optuna, new_optuna = old.arms.optuna, new.arms.optuna
    if old_optuna and new_optuna and new_optuna.n_trials < old_optuna.n_trials:
        problems.append(
            f"arms.optuna.n_trials {old_optuna.n_trials} → {new_optuna.n_trials} (fewer)"
        )
    if old_optuna and new.seeds[0] != old.seeds[0]:
        # Optuna's suggestions run on the first seed, its confirm runs on the others: a new
        # first seed would turn the suggestions run into confirm runs, and run n_trials again
        problems.append(f"seeds[0] {old.seeds[0]} → {new.seeds[0]} (the Optuna arm's seed)")
    return problems


def dropped_keys(old: StudySpec, new: StudySpec, tasks: int) -> list[str]:
    """Trials the old spec planned up front that the new one does not."""
    kept = {trial.key for trial in plan_up_front(new, tasks)}
    return [trial.key for trial in plan_up_front(old, tasks) if trial.key not in kept]


def check_extension(old: StudySpec, new: StudySpec, tasks: int) -> None:
    """Nothing when ``new`` only adds trials to ``old``; else one line naming each field
    that changes, or the trials dropped."""
    problems = changed_fields(old, new)
    if not problems:
        dropped = dropped_keys(old, new, tasks)
        if dropped:
            shown = ", ".join(dropped[:SHOWN_KEYS])
            more = f" and {len(dropped) - SHOWN_KEYS} more" if len(dropped) > SHOWN_KEYS else ""
            problems.append(f"it drops planned trials {shown}{more}")
    if problems:
        raise ExtensionError(
            f"study {new.study!r} exists and this spec changes its trials: "
            f"{'; '.join(problems)}. Launch it under another name (--name), or change only "
            "what adds trials (seeds, αs, weightings, arms, grid points, random or Optuna "
            "trials)"
        )
