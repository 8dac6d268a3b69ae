"""Packed training: K runs of one seed and one packing family at once, each exactly as alone.

Members of one seed share the initialisation (torch is seeded before ``build_model``) and the
batch order (the batch generator is seeded by the seed), so they differ only in ``w``. Their
parameters are stacked, the forward is vmapped over parameters with the batch shared, the
members' weighted losses are summed and one backward gives each member its own gradient.
One Adam over the stacked tensors is elementwise, so it is one Adam per member
(``StackedAdam``: torch's update, bit for bit, without its per-step allocations).

GradNorm members need each task's gradient at ``W``: the heads read per-task detached
copies of the shared features ``z``, one backward through the heads leaves each task's
``∂(w_i L_i)/∂z`` on its copy, those go through ``W`` alone for the norms (one batched
product over members for a linear tail), and their sum goes back through the trunk.

Members that choose ``w`` from every task's gradient (``Need.TASK_GRADIENTS``: the pack's
weights state ``task_gradient_sites``, Gramian-based balancers) take Jacobian descent's
step: each task's gradient of every member at once (one backward of ``Σ_k L_ki`` a task:
members' parameters are independent, so it yields ``(K, P)``), over the stacked trunk
parameters or at the stacked shared features ``z`` (each member at its own site; a pack
with both takes both in the same passes, and sends the ``z`` members' combination back
through the trunk once); the ``(K, T, T)`` Gramians go to ``choose``, the trunk gets
``Σ_i w_ki g_ki`` per member, each head its own task's gradient.

A member whose loss turns non-finite fails with the single run's message and is frozen
(zero gradient, zero Adam moments) once the watch reads it (finite.py: every step on a
CPU, every few steps on a GPU; until then the NaNs stay in that member's own slices);
the others go on. Time is shared: each member is
charged its share of the pack's time while it is alive, so per-arm compute stays honest.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.func import vmap

from gradsweep.arms import TrialStatus
from gradsweep.errors import GradsweepError
from gradsweep.trainers.balancers.base import Balancer
from gradsweep.trainers.engine.finite import Failure, FiniteWatch, check_every
from gradsweep.trainers.engine.loop import (
    Budget,
    EpochRecord,
    TaskEpoch,
    TrainResult,
    balancer_context,
    best_validation_step,
    epoch_batches,
    evaluate,
    final_validation,
    resolve_device,
    split_batches,
    validation_normalized_loss,
)
from gradsweep.trainers.engine.pipeline import batch_stream, on_device
from gradsweep.trainers.engine.precision import Precision, autocast, parse_precision, widened
from gradsweep.trainers.engine.step import GradientSite
from gradsweep.trainers.engine.trace import RawPoints, WeightTrace
from gradsweep.trainers.packed.stacked import StackedModel
from gradsweep.trainers.packed.stacked_adam import StackedAdam
from gradsweep.trainers.packed.weights import pack_weights
from gradsweep.trainers.problems.base import (
    Batch,
    MultitaskData,
    MultitaskModel,
    MultitaskProblem,
)


@dataclass(frozen=True)
class PackRound:
    """One evaluation of a pack: each live member's record (by member index), and the
    members that failed since the previous round, with their final results."""

    step: int
    records: dict[int, EpochRecord]
    failed: dict[int, TrainResult]


PackCallback = Callable[[PackRound], None]


def stacked_task_losses(
    problem: MultitaskProblem, outputs: Sequence[torch.Tensor], batch: Batch
) -> torch.Tensor:
    """``(K, T)``: the problem's losses of each member's outputs on one shared batch."""

    def one(*member_outputs: torch.Tensor) -> torch.Tensor:
        return torch.stack(problem.task_losses(list(member_outputs), batch))

    return vmap(one)(*outputs)  # type: ignore[no-any-return]


class _PackedRun:
    """The state of one ``train_packed`` call (the packed twin of the loop's ``_Run``)."""

    def __init__(
        self,
        problem: MultitaskProblem,
        balancers: Sequence[Balancer],
        budget: Budget,
        seed: int,
        device: torch.device,
        on_round: PackCallback | None,
        precision: Precision,
    ) -> None:
        self.problem, self.balancers, self.budget = problem, list(balancers), budget
        self.seed, self.device, self.on_round = seed, device, on_round
        self.precision = precision
        self.weights = pack_weights(self.balancers)
        sites = self.weights.task_gradient_sites
        self.at_z = torch.tensor(
            [site is GradientSite.REPRESENTATION for site in sites], dtype=torch.bool
        ).to(device)
        self.any_at_z = GradientSite.REPRESENTATION in sites
        self.any_at_parameters = GradientSite.SHARED_PARAMETERS in sites
        torch.manual_seed(seed)
        self.model = problem.build_model().to(device)
        members, tasks = len(self.balancers), len(problem.tasks)
        self.steps_per_epoch = max(len(problem.train_data) // problem.batch_size, 1)
        self.train_data = on_device(problem.train_data, device)
        self.test_data = on_device(problem.test_data, device)
        self.val_data = None if problem.val_data is None else on_device(problem.val_data, device)
        self.indices = epoch_batches(
            len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
        )
        self.watch = FiniteWatch(members, problem.task_names, device, check_every(device))
        # w(t) in memory that grows with steps / trace_every, not with the budget (trace.py)
        shape = (members, tasks)
        self.trace = WeightTrace(shape, budget.trace_every, self.watch.every, device)
        # the applied weights at trace points, for members whose raw_weights differ (MGDA's)
        self.raw_members = [type(b).raw_weights is not Balancer.raw_weights for b in balancers]
        self.raw_trace = (
            RawPoints(shape, budget.trace_every, device) if any(self.raw_members) else None
        )
        self.loss_sum = torch.zeros(members, tasks, device=device)
        self.loss_count = 0
        self.live = torch.ones(members, dtype=torch.bool, device=device)
        self.live_count = members  # on the host: no read of ``live`` per step
        self.any_failed = False
        self.stopped_at: list[int | None] = [None] * members
        self.errors: list[str | None] = [None] * members
        self.epochs: list[list[EpochRecord]] = [[] for _ in range(members)]
        self.seconds = [0.0] * members
        self.failed_since: dict[int, TrainResult] = {}
        # a failed member's result, made when it failed: the trace's sum goes on past its
        # failing step with the live members' steps
        self.failed_results: dict[int, TrainResult] = {}
        self.done = 0
        # Every member starts as this one network: its initial losses and the balancers'
        # start are the single run's, in the single run's order (a start that reads the
        # training split moves BatchNorm statistics before the members are copied).
        self.initial_test_losses, _ = evaluate(
            problem, self.model, device, precision, self.test_data
        )
        self.initial_val_losses = (
            None
            if self.val_data is None
            else evaluate(problem, self.model, device, precision, self.val_data)[0]
        )
        self.weights.start(
            balancer_context(problem, self.model, device, seed, precision, self.train_data)
        )
        self.stack = StackedModel(self.model, members)
        self.optimizer = StackedAdam(list(self.stack.params.values()), lr=problem.learning_rate)
        self._segment = time.perf_counter()  # setup is nobody's time, as in ``train``

    # -- time -----------------------------------------------------------------------------

    def _charge(self) -> None:
        """Share the time since the last charge among the members alive during it."""
        now = time.perf_counter()
        alive = [k for k, stop in enumerate(self.stopped_at) if stop is None]
        for k in alive:
            self.seconds[k] += (now - self._segment) / max(len(alive), 1)
        self._segment = now

    # -- evaluation -----------------------------------------------------------------------

    @torch.no_grad()
    def evaluate_members(
        self, data: MultitaskData
    ) -> tuple[torch.Tensor, list[list[dict[str, float]]]]:
        """``(K, T)`` losses and each live member's metrics on a whole split (test or
        validation)."""
        self.stack.train(False)
        live = [k for k, stop in enumerate(self.stopped_at) if stop is None]
        accumulators = {k: self.problem.metric_accumulator() for k in live}
        total = torch.zeros(len(self.balancers), len(self.problem.tasks), device=self.device)
        with split_batches(data, self.problem.eval_batch_size, self.device) as batches:
            for batch in batches:
                with autocast(self.precision, self.device):
                    outputs = self.stack.forward(batch.inputs)
                    losses = stacked_task_losses(self.problem, outputs, batch)
                outputs = [widened(output) for output in outputs]
                for k, accumulator in accumulators.items():
                    accumulator.update([output[k] for output in outputs], batch)
                total += widened(losses) * int(batch.inputs.shape[0])
        self.stack.train(True)
        metrics = [
            accumulators[k].compute() if k in accumulators else [] for k in range(len(total))
        ]
        return total / len(data), metrics

    def validate_members(
        self,
    ) -> tuple[list[list[float | None]], list[list[dict[str, float] | None]]]:
        """Each member's validation losses and metrics (None each without a split)."""
        members, tasks = len(self.balancers), len(self.problem.tasks)
        if self.val_data is None:
            return [[None] * tasks] * members, [[None] * tasks] * members
        losses, metrics = self.evaluate_members(self.val_data)
        return [list(row) for row in losses.tolist()], [
            list(row) if row else [None] * tasks for row in metrics
        ]

    def record(self, step: int) -> None:
        test_losses, metrics = self.evaluate_members(self.test_data)
        val_losses, val_metrics = self.validate_members()
        losses = test_losses.tolist()
        train = (self.loss_sum / self.loss_count).tolist() if self.loss_count else None
        weights = self.weights.weights.tolist()
        self._charge()
        records: dict[int, EpochRecord] = {}
        for k, stop in enumerate(self.stopped_at):
            if stop is not None:
                continue
            tasks = tuple(
                TaskEpoch(
                    name,
                    None if train is None else train[k][i],
                    losses[k][i],
                    m,
                    w,
                    val_losses[k][i],
                    val_metrics[k][i],
                )
                for i, (name, m, w) in enumerate(
                    zip(self.problem.task_names, metrics[k], weights[k], strict=True)
                )
            )
            normalized = self.problem.normalized_loss(losses[k], self.initial_test_losses)
            val_normalized = validation_normalized_loss(
                self.problem, val_losses[k], self.initial_val_losses
            )
            records[k] = EpochRecord(
                len(self.epochs[k]), step, tasks, normalized, self.seconds[k], val_normalized
            )
            self.epochs[k].append(records[k])
        self.loss_sum.zero_()
        self.loss_count = 0
        failed, self.failed_since = self.failed_since, {}
        if self.on_round is not None:
            self.on_round(PackRound(step, records, failed))
        self._segment = time.perf_counter()  # the callback's time is nobody's

    # -- training -------------------------------------------------------------------------

    def _weighted_backward(self, losses: torch.Tensor) -> None:
        live = self.live.unsqueeze(1)
        kept = torch.where(live, losses, 0.0) if self.any_failed else losses
        (kept * self.weights.weights).sum().backward()

    def _task_gradient_norms(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Losses ``(K, T)`` and ``‖∇_W (w_i L_i)‖`` per member and task, with every network
        gradient accumulated (one backward through the heads, one through the trunk)."""
        with autocast(self.precision, self.device):
            hidden, z = self.stack.shared_features(batch.inputs)
            copies = [z.detach().requires_grad_() for _ in self.problem.tasks]
            losses = widened(self.stack.head_losses(self.problem, batch, copies))
        self._observe(losses)
        if not self.live_count:
            return losses, torch.zeros_like(losses)
        self._weighted_backward(losses)
        grads = [c.grad if c.grad is not None else torch.zeros_like(z) for c in copies]
        if hidden is None:
            (at_w,) = torch.autograd.grad(
                z,
                self.stack.shared_layer,
                grad_outputs=torch.stack(grads),
                is_grads_batched=True,
                retain_graph=True,
            )
            norms = torch.linalg.vector_norm(widened(at_w).flatten(start_dim=2), dim=2)
        else:
            # z = h Wᵀ + b: ∇_W (w_i L_i) = (∂(w_i L_i)/∂z)ᵀ h, per member and task
            hidden_t = widened(hidden.detach()).flatten(start_dim=1, end_dim=-2).transpose(1, 2)
            norms = torch.stack(
                [
                    torch.linalg.vector_norm(
                        hidden_t @ widened(g).flatten(start_dim=1, end_dim=-2), dim=(1, 2)
                    )
                    for g in grads
                ]
            )
        z.backward(torch.stack(grads).sum(dim=0))
        return losses, norms.T

    def _aggregated_backward(self, batch: Batch) -> torch.Tensor:
        """Losses ``(K, T)``, with Jacobian descent's gradient accumulated for every member:
        the weights chosen from the members' Gramians, the trunk given ``Σ_i w_ki g_ki``,
        each head its own task's gradient (``TrainingStep.backward_aggregated``, packed)."""
        tasks = len(self.problem.tasks)
        with autocast(self.precision, self.device):
            z = self.stack.trunk_output(batch.inputs)
            losses = widened(self.stack.head_losses(self.problem, batch, [z] * tasks))
        self._observe(losses)
        if not self.live_count:
            return losses
        kept = torch.where(self.live.unsqueeze(1), losses, 0.0) if self.any_failed else losses
        trunk = self.stack.trunk_parameters()
        at_parameters, at_z = self.any_at_parameters, self.any_at_z
        inputs = [*(trunk if at_parameters else []), *([z] if at_z else [])]
        sizes = [x[0].numel() for x in inputs]
        # (K, T, P + Z) in fp32: each gradient copied once into its place (no flatten, cat
        # and stack copies; a stacked linear weight's gradient comes transposed)
        gradients = torch.zeros(
            len(self.balancers), tasks, sum(sizes), dtype=losses.dtype, device=z.device
        )
        for i in range(tasks):
            grads = torch.autograd.grad(
                kept[:, i].sum(), inputs, retain_graph=True, allow_unused=True
            )
            offset = 0
            for g, x, size in zip(grads, inputs, sizes, strict=True):
                if g is not None:
                    gradients[:, i, offset : offset + size].view(x.shape).copy_(g)
                offset += size
        z_size = sizes[-1] if at_z else 0
        at_p = gradients[:, :, : gradients.shape[2] - z_size]  # over the trunk's parameters
        at_f = gradients[:, :, gradients.shape[2] - z_size :]  # at z
        if at_parameters and at_z:
            gramians = torch.where(self.at_z.view(-1, 1, 1), at_f @ at_f.mT, at_p @ at_p.mT)
        else:
            gramians = at_p @ at_p.mT if at_parameters else at_f @ at_f.mT
        self.weights.choose(gramians)
        w = self.weights.raw_weights.to(gradients.dtype).unsqueeze(1)  # (K, 1, T)
        heads = self.stack.head_parameters()
        if heads:
            torch.autograd.backward(kept.sum(), inputs=heads, retain_graph=at_z)
        if at_z:
            combined = (w @ at_f).squeeze(1)  # Σ_i w_ki ∂L_ki/∂z_k, (K, Z)
            if at_parameters:
                combined = torch.where(self.at_z.unsqueeze(1), combined, 0.0)
            torch.autograd.backward(z, combined.view_as(z).to(z.dtype), inputs=trunk)
        if at_parameters:
            combined = (w @ at_p).squeeze(1)  # Σ_i w_ki g_ki, (K, P)
            offset = 0
            for parameter in trunk:
                size = parameter[0].numel()
                piece = combined[:, offset : offset + size].view(parameter.shape)
                piece = piece.to(parameter.dtype)
                offset += size
                if at_z and parameter.grad is not None:
                    keep = self.at_z.view(-1, *[1] * (parameter.dim() - 1))
                    piece = torch.where(keep, parameter.grad, piece)
                parameter.grad = piece
        return losses

    def _observe(self, losses: torch.Tensor) -> None:
        """Hand the step's losses to the watch; on a CPU a failure is read at once, so the
        failing members are masked out of this very step's update."""
        self.watch.observe(self.done, losses)
        if self.watch.immediate and self.watch.failures_pending:
            self._fail(self.watch.failures())

    def _fail(self, failures: list[Failure]) -> None:
        """Stop the members that failed: their message, step and result, then freeze them."""
        if not failures:
            return
        self._charge()
        bad = torch.zeros_like(self.live)
        for failure in failures:
            k = failure.member
            self.errors[k] = failure.reason
            self.stopped_at[k] = failure.step
            self.failed_since[k] = self.failed_results[k] = self.result(k)
            bad[k] = True
        self.live &= ~bad
        self.live_count -= len(failures)
        self.any_failed = True
        self.weights.freeze(bad)
        self.optimizer.reset(bad)

    def train_step(self, batch: Batch) -> None:
        self.trace.record(self.done, self.weights.weights)
        self.optimizer.zero_grad()
        chosen_within = bool(self.weights.task_gradient_sites)
        raw = self.raw_trace
        keep_raw = raw is not None and raw.due(self.done)
        if raw is not None and keep_raw and not chosen_within:  # the weights this step applies
            raw.record(self.done, self.weights.raw_weights)
        norms: torch.Tensor | None = None
        if chosen_within:
            losses = self._aggregated_backward(batch)
        elif self.weights.needs_task_gradients:
            losses, norms = self._task_gradient_norms(batch)
        else:
            with autocast(self.precision, self.device):
                losses = widened(self.stack.losses(self.problem, batch))
            self._observe(losses)
            if self.live_count:
                self._weighted_backward(losses)
        if not self.live_count:
            return
        if chosen_within:  # the weights were chosen within the step: record those applied
            self.trace.record(self.done, self.weights.weights)
            if raw is not None and keep_raw:
                raw.record(self.done, self.weights.raw_weights)
        if self.any_failed:  # the failed members' slices get exactly no update
            for param in self.stack.params.values():
                if param.grad is not None:
                    param.grad[~self.live] = 0.0
        self.weights.update(losses.detach(), norms, self.live)
        self.optimizer.step()
        self.loss_sum += losses.detach()
        self.loss_count += 1

    def run(self) -> list[TrainResult]:
        self.record(0)
        eval_every = self.budget.eval_every or self.steps_per_epoch
        with batch_stream(self.train_data, self.indices, self.device) as batches:
            for _ in range(self.budget.steps):
                self.train_step(next(batches))
                if not self.live_count:
                    break
                self.done += 1
                evaluating = self.done % eval_every == 0 or self.done == self.budget.steps
                if evaluating or self.watch.due(self.done):
                    self._fail(self.watch.failures())
                    if not self.live_count:
                        break
                    self.trace.confirm(self.done)  # the live members' steps read finite
                if evaluating:
                    self.record(self.done)
        self._charge()
        return [self.failed_results.get(k) or self.result(k) for k in range(len(self.balancers))]

    def result(self, k: int) -> TrainResult:
        stop = self.stopped_at[k]
        done = self.done if stop is None else stop
        points = self.trace.point_steps(done)
        trace = self.trace.points_before(done)[:, k]
        raw_trace = self.raw_trace
        raw = raw_trace.before(done)[:, k].tolist() if raw_trace and self.raw_members[k] else []
        # a failed member ends with the weights of its failing step (later ones saw NaNs)
        weights = self.trace.at(stop)[k] if stop is not None else self.weights.weights[k]
        epochs = self.epochs[k]
        last = epochs[-1]
        error = self.errors[k]
        return TrainResult(
            status=TrialStatus.FAILED if error else TrialStatus.COMPLETED,
            error=error,
            problem=self.problem.describe(),
            balancer=self.balancers[k].describe(),
            tasks=self.problem.task_names,
            seed=self.seed,
            steps=done,
            device=str(self.device),
            weights_final=weights.tolist(),
            weights_mean=self.trace.mean(done)[k].tolist() if done else weights.tolist(),
            initial_test_losses=self.initial_test_losses,
            test_losses=[task.test_loss for task in last.tasks],
            test_metrics=[task.metrics for task in last.tasks],
            normalized_loss=(
                None if error or not math.isfinite(last.normalized_loss) else last.normalized_loss
            ),
            train_seconds=self.seconds[k],
            initial_val_losses=self.initial_val_losses,
            **final_validation(last, error is None),
            best_val_step=best_validation_step(epochs),
            epochs=list(epochs),
            trace=list(zip(points, trace.tolist(), strict=True)),
            raw_trace=list(zip(points, raw, strict=False)),
            precision=str(self.precision),
        )

    def member_model(self, k: int) -> MultitaskModel:
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.stack.member_state(k))
        return model


def train_packed(
    problem: MultitaskProblem,
    balancers: Sequence[Balancer],
    budget: Budget,
    seed: int = 0,
    on_round: PackCallback | None = None,
    device: str | torch.device | None = None,
    keep_models: bool = False,
    precision: Precision | str = Precision.FP32,
) -> list[TrainResult]:
    """Train one member per balancer (all of one packing family: static, GradNorm, or
    Gramian-based balancers of any kind) in one packed run.

    Each member's result is what ``train`` gives that balancer alone on the same seed (to
    float rounding); ``train_seconds`` is its share of the pack's time. ``keep_models``
    rebuilds each member's network for the results (for notebooks and tests).
    """
    if budget.steps < 1 or (budget.eval_every is not None and budget.eval_every < 1):
        raise GradsweepError(
            f"steps and eval_every must be >= 1, got {budget.steps} and {budget.eval_every}"
        )
    chosen = parse_precision(precision)
    run = _PackedRun(problem, balancers, budget, seed, resolve_device(device), on_round, chosen)
    results = run.run()
    if keep_models:
        for k, result in enumerate(results):
            result.model = run.member_model(k)
    return results
