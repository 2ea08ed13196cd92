"""The training loop: one readable function from config to trained model and report.

Built on Hugging Face Accelerate, so the same code runs on a CPU, one GPU or several
processes (`accelerate launch -m polyhead train ...` or `torchrun -m polyhead train ...`),
with mixed precision as a config switch. Every process draws the same global batch
(one task's examples) and trains on its slice of it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import InputError
from ..model import MultiTaskModel
from .adapters import adapter_freezing, merged_copy
from .checkpoint import (CheckpointStore, TrainerState, load_checkpoint, load_optimizer_state, restore_rng, start_over,
                         rng_state, save_model_copy)
from .config import RunConfig, save_config
from .data import TaskData
from .extending import Extension, fixed_shares, old_head_rates, prepare_tasks
from .evaluation import evaluate_tasks, select_metric, stream_embeddings
from .freezing import TrainModes, apply_freezing, frozen_modules, frozen_names
from .frozen_cache import NO_CUT, FrozenFeatures, find_cut
from .losses import LossBalancer
from .metrics_log import MetricsLog
from .optim import LearningRates, build_optimizer, describe_groups, parameter_groups, schedule_factor, set_learning_rates
from .parts import model_parts
from .phases import Phase, phase_at, plan_phases
from .budget import plan_budget
from .imbalance import balanced_classes, class_weight_tensors, imbalance
from .run_start import announce_start
from .precision import forget_previous_precision, resolve_precision
from .precision_probe import run_probe
from .compiled import CompiledForward
from .device_ids import host_to_device
from ..sdpa import attention_backends
from ..tokenization import padded_width
from .processes import announce_processes, training_device
from .sampler import TaskBatchSampler, steps_per_epoch
from .clock import RunClock
from .results import RunSummary, record_results
from .step_tally import NonFiniteWatch, StepTally
from .streams import length_event, tokenize_streams
from .stop_signal import StopSignal
from .trackers import TrackerBridge, hyperparameters, prepare_tracker_storage
from .training_module import TrainingModule, build_model
from .outcome import TrainingError, TrainingInterrupted, TrainResult


class Trainer:
    """One training run, step by step; `train()` below is the whole story in order."""

    def __init__(self, config: RunConfig, resume: bool, base_dir: Path, task_data: dict[str, TaskData] | None = None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, set_seed

        self.config, t = config, config.training
        device = training_device(t.device, t.mixed_precision)
        self.precision = resolve_precision(t.mixed_precision, device.type, probe=run_probe(config))
        forget_previous_precision()
        self.accelerator = Accelerator(
            mixed_precision=self.precision.used,
            cpu=device.type == "cpu",
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
            log_with=t.report_to or None,
            project_dir=str(prepare_tracker_storage(t.report_to, Path(config.output_dir))) if t.report_to else None,
        )
        acc = self.accelerator
        self.main, self.rank, self.world = acc.is_main_process, acc.process_index, acc.num_processes
        announce_processes(acc)
        self.run_dir = Path(config.output_dir)
        self.checkpoints = CheckpointStore(self.run_dir / "checkpoints")
        self.last_dir, self.best_dir = self.checkpoints.pointer, self.run_dir / "checkpoints" / "best"
        if t.batch_size % self.world:
            raise InputError(f"batch_size {t.batch_size} is not divisible by the {self.world} processes", field="training.batch_size")
        if not resume and self.checkpoints.exists():
            raise InputError(f"{self.run_dir} already holds a run; resume it with --resume or choose another output_dir", field="output_dir")
        resume_dir = self.checkpoints.resume_point(self.main, acc.wait_for_everyone) if resume else None
        if resume and resume_dir is None:
            # Stopped before its first checkpoint was complete: there is nothing to continue, so start again.
            start_over(self.run_dir, self.main)
            resume = False

        # Everything that can be wrong with the data fails here, before any training.
        self.start, self.task_data, self.train_data = prepare_tasks(config, task_data or {}, base_dir)
        set_seed(t.seed)
        self.model = build_model(config, self.task_data, acc.device)
        self.balancer = LossBalancer(list(self.train_data), t.loss_weighting, {n: c.weight for n, c in config.tasks.items()})
        self.module = TrainingModule(self.model, self.balancer).to(acc.device)
        self.extension = Extension.begin(config, self.start, self.task_data, self.train_data, self.run_dir, self.main, self.module)
        self.parts = model_parts(self.module, "model.encoder.", "model.heads.")
        self.rates = LearningRates(t.learning_rate, t.pooler_learning_rate or t.head_learning_rate, t.head_learning_rate, t.layer_decay,
                                   old_head_rates(config, self.start))

        self.tokenizer = self.model.encoder.text_tokenizer
        streams = tokenize_streams(self.train_data, self.tokenizer, self.model.tasks)
        self.train_ids, self.train_targets, self.truncated = streams.ids, streams.targets, streams.truncated
        self.sizes, self.lengths, shares = streams.sizes, streams.lengths, fixed_shares(config)
        epoch_steps = steps_per_epoch(self.sizes, t.batch_size * t.grad_accum_steps, shares)
        self.budget = plan_budget(config, epoch_steps)
        self.total_steps = self.budget.total_steps
        self.phases = plan_phases(config, self.total_steps, epoch_steps)
        # Validate every phase's freezing now, not when the phase starts.
        for phase in self.phases:
            frozen_names(self.parts, phase.freeze, f"phases.{phase.index}.freeze" if config.phases else "freeze")
        self.sampler = TaskBatchSampler(self.sizes, t.batch_size, t.mixing, t.mixing_temperature, t.seed,
                                        lengths=self.lengths, group_by_length=t.group_by_length, pool_batches=t.length_pool_batches,
                                        shares=shares, classes=balanced_classes(config, self.train_data))
        self.module.class_weights = {task: w.to(acc.device) for task, w in class_weight_tensors(config, self.train_data).items()}
        self.imbalance = imbalance(config, self.train_data)
        # Buckets where shapes cost: on a GPU, and wherever compiled graphs are kept per shape.
        self.multiple = t.pad_to_multiple or (16 if acc.device.type == "cuda" or t.compile else 1)
        self.train_targets = {task: targets.to(acc.device) for task, targets in self.train_targets.items()}
        self.features = FrozenFeatures(self.model, self.train_ids, self.tokenizer, t.cache_memory_mb * 2**20,
                                       self.run_dir / "cache", self.rank, self.multiple)
        self.module.features = self.features
        self.eval_embeddings: dict[str, torch.Tensor] | None = None
        self.log = MetricsLog(self.run_dir / "metrics.jsonl", enabled=self.main)
        self.state = TrainerState()
        self.phase: Phase | None = None
        self.optimizer = None
        self.stop_reason = self.budget.end_reason()
        self.validation: dict[str, dict] = {}
        self.tally, self.clock = StepTally(acc.device), RunClock()
        self.watch = NonFiniteWatch(acc.device, list(self.train_data))

        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, self.run_dir / "config.yaml")
        if t.report_to:
            acc.init_trackers(self.run_dir.name, config=hyperparameters(config.to_dict()))
            self.log.listeners.append(TrackerBridge(acc))
        if resume:
            self.state = load_checkpoint(resume_dir, self.module)
            self.sampler.load_state_dict(self.state.sampler)
            restore_rng(resume_dir, self.rank)
            self.log.truncate_after(self.state.step)
            self.clock.resume_from(self.state.elapsed_s, self.state.cpu_s)
        if not resume:  # per task and split: texts cut at max_seq_length and length percentiles, so truncation is never silent
            event, lines = length_event(self.task_data, self.tokenizer.token_lengths, self.model.encoder)
            self.log.write(event)
            if self.main:
                print(lines)
        self.enter_phase(phase_at(self.phases, self.state.step), resumed=resume)
        if resume and self.optimizer is not None:
            load_optimizer_state(resume_dir, self.optimizer)
        announce_start(self, resume)

    # ------------------------------------------------------------------ phases
    def enter_phase(self, phase: Phase, resumed: bool = False) -> None:
        """Apply the phase's freezing and rebuild the optimizer groups, keeping Adam state."""
        frozen = adapter_freezing(self.parts, frozen_names(self.parts, phase.freeze))
        self.trainable, total = apply_freezing(self.module, frozen)
        self.frozen_parts = frozen_modules(self.module, frozen)
        self.trainable_params = [p for p in self.module.parameters() if p.requires_grad]
        self.modes = TrainModes(self.module, self.frozen_parts)
        previous = self.optimizer.optimizer if self.optimizer is not None and hasattr(self.optimizer, "optimizer") else self.optimizer
        groups = parameter_groups(self.module, self.parts, self.rates, self.config.training.weight_decay)
        self.optimizer = self.accelerator.prepare(build_optimizer(groups, previous)) if groups else None
        # DDP decides at wrap time which parameters it syncs: wrap again for the new phase.
        self.ddp_module = self.accelerator.prepare(self.module) if self.world > 1 and groups else self.module
        self.forward = CompiledForward(self.ddp_module, self.config.training.compile and bool(groups),
                                       self.accelerator.device.type, self.compile_failed)
        if self.phase is not None and not resumed:
            self.state.evals_without_improvement = 0  # patience counts within a phase: a new phase trains other parts
        self.phase = phase
        self.set_cut(find_cut(self.parts, frozen) if groups and self.config.training.cache_frozen else NO_CUT)
        summary = describe_groups(groups)
        message = f"phase {phase.index + 1}/{len(self.phases)} ({phase.name}): steps {phase.start}-{phase.end}" if len(self.phases) > 1 else "training"
        cache = {"cut": self.features.cut.kind, "layer": self.features.cut.layer, "storage": self.features.storage()}
        self.log.write({"type": "event", "step": self.state.step, "message": message, "phase": phase.index,
                        "parameters": {"trainable": self.trainable, "total": total}, "param_groups": summary,
                        "frozen_cache": cache})
        if self.main and self.config.training.progress:
            print(f"{message}: {self.trainable:,} trainable of {total:,} parameters")
            if self.features.cut.caches:
                print(f"  cache: {self.features.cut.describe()}")
            for group in summary:
                print(f"  {group['name']:<28} lr {group['lr']:.2e}  weight_decay {group['weight_decay']:g}  {group['parameters']:,} params")

    def set_cut(self, cut) -> None:
        """Cache the frozen part's outputs for this phase (dropped when the cut moves)."""
        if cut == self.features.cut:
            return
        train_texts = {stream: texts for data in self.train_data.values() for stream, texts in zip(data.streams(), data.columns("train"))}
        # The fast inference path when training is in bf16 anyway; the exact one otherwise.
        backend = "torch" if self.precision.used == "no" else self.model.encoder.backend
        self.features.set_cut(cut, train_texts, backend)
        self.eval_embeddings = None

    def validation_embeddings(self) -> dict[str, torch.Tensor]:
        """Under a frozen encoder, validation embeddings cannot change: computed once, on the exact path."""
        if self.features.cut.kind != "encoder":
            return {}
        if self.eval_embeddings is None:
            self.eval_embeddings = stream_embeddings(self.model, self.task_data, "validation", self.config.training.eval_batch_size)
        return self.eval_embeddings

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        """One optimizer step without waiting for the device: losses, counts and non-finite flags stay on it (see step_tally)."""
        t, acc = self.config.training, self.accelerator
        assert self.optimizer is not None
        set_learning_rates(self.optimizer, schedule_factor(self.state.step, int(t.warmup_ratio * self.total_steps), self.total_steps))
        self.modes.ensure()
        per_process = t.batch_size // self.world
        step = self.state.step + 1
        for micro in range(t.grad_accum_steps):
            task, indices = self.sampler.next_batch()
            local = indices[self.rank * per_process : (self.rank + 1) * per_process]
            rows = host_to_device(torch.as_tensor(local, dtype=torch.int64), acc.device)
            targets = self.train_targets[task][rows]
            last_micro = micro == t.grad_accum_steps - 1
            sync = contextlib.nullcontext() if last_micro or self.world == 1 else acc.no_sync(self.ddp_module)
            with sync, acc.autocast(), attention_backends():
                inputs = [self.features.batch(stream, local, rows) for stream in self.task_data[task].streams()]
                weighted, raw = self.forward(inputs, targets=targets, task=task, rows=rows)
                if weighted.requires_grad:  # a task whose head and encoder are both frozen in this phase has nothing to learn
                    acc.backward(weighted / t.grad_accum_steps)
            self.watch.note(step, raw, task)
            lengths = [self.lengths[task][i] for i in local]
            self.tally.add(task, raw, t.batch_size, lengths, padded_width(max(lengths), self.multiple, self.tokenizer.max_seq_length))
        # Clipping scales by min(1, max_norm / norm) on the device; the norm is only checked for being finite, later.
        grad_norm = acc.clip_grad_norm_(self.trainable_params, t.max_grad_norm or float("inf"))
        if grad_norm is not None:
            self.watch.note(step, torch.as_tensor(grad_norm))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1

    def check_finite(self) -> None:
        """Stop if any step since the start had a non-finite loss or gradient norm (the one wait for the device's flags).

        Called first by logging, evaluation and checkpoints, so a checkpoint never holds the weights of a bad step.
        """
        first, task = self.watch.read(self.accelerator, self.world)
        if first:
            raise TrainingError.non_finite(first, task, self.state.step, self.last_dir, self.run_dir)

    def compile_failed(self, why: str) -> None:
        """training.compile could not compile or capture the step: the run goes on in eager mode (said once)."""
        message = f"training.compile failed, training goes on in eager mode: {why}"
        self.log.write({"type": "event", "step": self.state.step, "message": message})
        if self.main:
            print(message)

    # ------------------------------------------------------------------ logging, evaluation, checkpoints
    def log_training(self) -> dict[str, float]:
        self.check_finite()
        losses = self.tally.mean_losses(self.accelerator, list(self.train_data), self.world)
        consumed = self.sampler.consumed
        self.log.write({
            "type": "train", "step": self.state.step,
            "epoch": round(sum(consumed.values()) / sum(self.sizes.values()), 4),
            "task_epochs": {k: round(v, 4) for k, v in self.sampler.epochs_seen().items()},
            "loss": losses, "total_loss": sum(losses.values()), "loss_weights": self.balancer.weights(),
            "lr": self.optimizer.param_groups[-1]["lr"] if self.optimizer else 0.0,
            "examples": dict(self.tally.examples), "examples_total": dict(consumed),
            "padding_ratio": self.tally.padding_ratio(),
            "elapsed_s": round(self.clock.elapsed(), 3),
        })
        self.tally = StepTally(self.accelerator.device)
        return losses

    def evaluate(self) -> bool:
        """Validate, keep the best model; True when early stopping says stop."""
        self.check_finite()
        t, state = self.config.training, self.state
        self.validation = evaluate_tasks(self.model, self.task_data, "validation", t.eval_batch_size, self.validation_embeddings(),
                                         tune=set(self.train_data))
        # The best model is chosen on the tasks that train: an old task that is only evaluated must not steer it.
        score = select_metric({n: m for n, m in self.validation.items() if n in self.train_data}, t.early_stopping.metric)
        self.log.write({"type": "eval", "step": state.step, "split": "validation", "tasks": self.validation,
                        "score": score, "elapsed_s": round(self.clock.elapsed(), 3)})
        if state.best_metric is None or score > state.best_metric + t.early_stopping.min_delta:
            state.best_metric, state.best_step, state.evals_without_improvement = score, state.step, 0
            if self.main:
                save_model_copy(merged_copy(self.model), self.best_dir, self.run_dir)
            self.accelerator.wait_for_everyone()
            return False
        state.evals_without_improvement += 1
        patience = self.budget.patience
        if patience is not None and state.evals_without_improvement >= patience:
            self.stop_reason = self.budget.stop_reason(patience)
            self.log.write({"type": "event", "step": state.step, "message": self.stop_reason})
            return True
        return False

    def next_phase_early(self) -> bool:
        """Early stopping inside a phase that is not the last ends that phase, not the run: the next one trains other parts."""
        if self.phase is None or self.phase.index == len(self.phases) - 1:
            return False
        self.log.write({"type": "event", "step": self.state.step, "message": f"{self.stop_reason}: phase {self.phase.index + 1} "
                        f"({self.phase.name}) ends here, phase {self.phase.index + 2} starts"})
        self.state.step, self.state.evals_without_improvement, self.stop_reason = self.phase.end, 0, self.budget.end_reason()
        return True

    def checkpoint(self) -> None:
        from accelerate.utils import gather_object

        self.check_finite()
        self.state.sampler = self.sampler.state_dict()
        self.state.elapsed_s, self.state.cpu_s = self.clock.elapsed(), self.clock.cpu_seconds()
        self.state.phase = self.phase.index if self.phase else 0
        states = gather_object([rng_state()]) if self.world > 1 else [rng_state()]
        if self.main:
            self.checkpoints.save(self.module, self.optimizer, self.state, states)
        self.accelerator.wait_for_everyone()

    def finish(self) -> TrainResult:
        """Test the best model, save it as the run's model, write metrics and the report."""
        t = self.config.training
        training_time, cpu_time = self.clock.elapsed(), self.clock.cpu_seconds()
        stopped = self.budget.stopped_event(self.state.step, self.state.best_step, self.stop_reason)
        self.log.write(stopped)
        if self.main and t.progress:
            print(stopped["message"])
        self.features.drop()
        best = self.best_dir.exists() and self.state.best_step is not None
        final_model = MultiTaskModel.load(self.best_dir, device=self.accelerator.device) if best else self.model
        test_metrics = evaluate_tasks(final_model, self.task_data, "test", t.eval_batch_size)
        if best and not test_metrics:  # then validation is what the run shows: the kept model's, not the last evaluation's
            self.validation = evaluate_tasks(final_model, self.task_data, "validation", t.eval_batch_size)
        model_dir = self.run_dir / "model"
        if self.main:
            if test_metrics:  # tasks without test data have no test line (the report then shows validation)
                self.log.write({"type": "test", "step": self.state.step, "split": "test", "best_step": self.state.best_step,
                                "tasks": test_metrics, "elapsed_s": round(training_time, 3)})
            save_model_copy(merged_copy(final_model), model_dir, self.run_dir)
            record_results(self.run_dir, model_dir, final_model, self.config.to_dict(), RunSummary(
                self.state.step, self.state.best_step, self.stop_reason, training_time, cpu_time, self.trainable,
                test_metrics, dict(self.sampler.consumed)))
        failures = self.extension.finish(final_model, self.run_dir, test_metrics) if self.extension is not None else []
        self.accelerator.wait_for_everyone()
        if t.report_to:
            self.accelerator.end_training()
        if failures:
            raise TrainingError(self.extension.failure_message(failures, self.run_dir))
        return TrainResult(self.run_dir, model_dir, self.state.step, training_time, cpu_time, self.stop_reason,
                           self.state.best_step, test_metrics, self.validation)


def train(config: RunConfig, *, resume: bool = False, base_dir: Path | str = ".",
          task_data: dict[str, TaskData] | None = None) -> TrainResult:
    """Train every task of `config` jointly; write the run directory; return test metrics.

    `task_data`: the tasks' data already read and checked (the CLI does so before loading torch).
    """
    trainer = Trainer(config, resume, Path(base_dir), task_data)
    t = config.training
    eval_every = trainer.budget.eval_every
    checkpoint_every = t.checkpoint_every or eval_every
    if trainer.optimizer is None:
        trainer.stop_reason = "nothing to train: every parameter is frozen, the model is evaluated as it is"
        trainer.log.write({"type": "event", "step": 0, "message": trainer.stop_reason})
        if trainer.main and t.progress:
            print(trainer.stop_reason)
        trainer.evaluate()
        return trainer.finish()
    stop = StopSignal(enabled=trainer.world == 1)
    progress = tqdm(total=trainer.total_steps, initial=trainer.state.step, disable=not (t.progress and trainer.main),
                    desc="train", unit="step", dynamic_ncols=True)
    try:
        while trainer.state.step < trainer.total_steps:
            phase = phase_at(trainer.phases, trainer.state.step)
            if phase is not trainer.phase:
                trainer.enter_phase(phase)
            trainer.train_step()
            progress.update(1)
            step, is_last = trainer.state.step, trainer.state.step >= trainer.total_steps
            if step % t.log_every == 0 or is_last:
                progress.set_postfix({k: f"{v:.3f}" for k, v in trainer.log_training().items()})
            if (step % eval_every == 0 or is_last) and trainer.evaluate() and not trainer.next_phase_early():
                trainer.checkpoint()
                break
            if step % checkpoint_every == 0 or is_last:
                trainer.checkpoint()
            if stop.received is not None:
                trainer.checkpoint()
                raise TrainingInterrupted(f"stopped by signal {stop.received} at step {step}; checkpoint written", trainer.run_dir)
    finally:
        progress.close()
        stop.restore()
    return trainer.finish()

