"""The results schema as SQLAlchemy 2.0 typed models.

Every table is prefixed ``gs_``: Optuna keeps its own study (the Optuna arm) in the same
database and owns tables called ``studies``, ``trials`` and ``alembic_version``.

Names a spec, a problem or a host chooses are TEXT, without a length limit (revision 0012),
so a spec stores the same on SQLite (which never enforces a VARCHAR's length) and on
PostgreSQL (which does); the study name keeps its 200 characters, which the spec checks.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gradsweep.arms import StudyStatus, TrialStatus

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class Study(Base):
    __tablename__ = "gs_studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec_text: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str] = mapped_column(String(64))
    problem: Mapped[str] = mapped_column(Text)
    task_names: Mapped[list[Any]]
    objective_name: Mapped[str] = mapped_column(String(100))
    objective_direction: Mapped[str] = mapped_column(String(3))
    # per task {"metric": name, "direction": "min"|"max"}; None for studies before 0004
    task_metrics: Mapped[list[Any] | None]
    status: Mapped[str] = mapped_column(String(20), default=StudyStatus.CREATED.value)
    planned: Mapped[int | None] = mapped_column(Integer)  # trials the study plans in all
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Trial(Base):
    __tablename__ = "gs_trials"
    __table_args__ = (
        UniqueConstraint("study_id", "key", name="uq_gs_trials_study_key"),
        Index("ix_gs_trials_study_status", "study_id", "status"),
        Index("ix_gs_trials_study_arm", "study_id", "arm"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("gs_studies.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)
    arm: Mapped[str] = mapped_column(Text)
    balancer: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]]
    static_weights: Mapped[list[Any] | None]
    alpha: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)
    # the other arms that asked for this same static weighting (revision 0008): it trains
    # once per seed, under the first arm's key, and belongs to each
    also_arms: Mapped[list[Any] | None]
    status: Mapped[str] = mapped_column(String(20), default=TrialStatus.PENDING.value)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)  # of a failure that raised
    node: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # the pack (one Ray trial training several trials at once) it last ran in; None: alone
    pack: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    train_seconds: Mapped[float | None] = mapped_column(Float)
    # mean over tasks of test L_i / L_i of the untrained network (the study's objective is
    # scored on read: it is this, or Δm% against the equal-weight trials)
    normalized_loss: Mapped[float | None] = mapped_column(Float)
    weights_final: Mapped[list[Any] | None]
    weights_mean: Mapped[list[Any] | None]
    # per task, in task order, of a completed trial (revision 0006): test loss of the
    # untrained network and at the last evaluation, and the final primary metric
    initial_test_losses: Mapped[list[Any] | None]
    test_losses: Mapped[list[Any] | None]
    final_metrics: Mapped[list[Any] | None]
    # the same on the validation split (revision 0011; null for trials from before it,
    # which are selected on test), its normalised loss, and the step of the evaluation
    # with the best validation normalised loss (``selection.checkpoint: best_validation``)
    initial_val_losses: Mapped[list[Any] | None]
    val_losses: Mapped[list[Any] | None]
    val_final_metrics: Mapped[list[Any] | None]
    val_normalized_loss: Mapped[float | None] = mapped_column(Float)
    best_val_step: Mapped[int | None] = mapped_column(Integer)


class EpochMetric(Base):
    """Long format: one row per (trial, evaluation, task)."""

    __tablename__ = "gs_epoch_metrics"

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("gs_trials.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(Text, primary_key=True)
    step: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float | None] = mapped_column(Float)
    test_loss: Mapped[float | None] = mapped_column(Float)
    metric_name: Mapped[str | None] = mapped_column(Text)
    metric_value: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]]
    weight: Mapped[float | None] = mapped_column(Float)
    # on the validation split (revision 0011; null for rows from before it)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_metric_value: Mapped[float | None] = mapped_column(Float)
    val_metrics: Mapped[dict[str, Any] | None]


class WeightTrace(Base):
    """The weight trajectory w(t), recorded every k steps."""

    __tablename__ = "gs_weight_trace"

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("gs_trials.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    weights: Mapped[list[Any]]  # rescaled to Σ = T
    # as the step applied them, where they differ; SQL NULL (not JSON null) otherwise
    raw_weights: Mapped[list[Any] | None] = mapped_column(
        JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
    )


class Comparison(Base):
    __tablename__ = "gs_comparisons"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("gs_studies.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payload: Mapped[dict[str, Any]]


class StudyLease(Base):
    """The driver running a study (revision 0013): one row while a launch or resume runs
    it, so that a second one is refused (``storage/lease.py``)."""

    __tablename__ = "gs_study_leases"

    study_id: Mapped[int] = mapped_column(
        ForeignKey("gs_studies.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    # the holder's kernel boot and pid namespace: its pid is looked up only from the same
    # (containers may share a host name, never a pid namespace); null off Linux
    namespace: Mapped[str | None] = mapped_column(Text)
    token: Mapped[str] = mapped_column(String(32))  # this holding of the lease
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    renewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
