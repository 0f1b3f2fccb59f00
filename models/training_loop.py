"""What every training command shares: schedule, optimiser, the step loop, resuming and the final checkpoint.

``tubelets train detector`` and ``tubelets train tracker`` differ in what a
step computes; the rest is here, so both show the same progress bar, write
checkpoints atomically every ``checkpoint_every`` steps, resume the same way
and refuse a non-finite loss with the same advice. ``section`` names the
command's config section (``train_detector``, ``train_tracker``) in messages.

A run may also have a wall-clock :class:`Budget`: it stops at the first step
that starts after the budget is spent, and its learning-rate schedule follows
the spent share of the budget as well as the steps (see :func:`learning_rate`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Iterable, Mapping, Optional

import fsspec
import torch
from tqdm.auto import tqdm

from tubelets.errors import ConfigError
from tubelets.models.checkpoints import strip_for_release, write_checkpoint

StepLosses = dict[str, float]


@dataclasses.dataclass(frozen=True)
class Budget:
    """``seconds`` of wall-clock time counted from ``started`` (a ``time.monotonic()`` reading)."""

    seconds: float
    started: float

    def spent_share(self) -> float:
        """The share of the budget spent so far (above 1 once it is over)."""
        return (time.monotonic() - self.started) / self.seconds if self.seconds > 0 else math.inf

    def is_spent(self) -> bool:
        return self.spent_share() >= 1.0


def learning_rate(step: int, train_cfg: Mapping, spent_share: Optional[float] = None) -> float:
    """The learning rate of step ``step``: linear warm-up from 1%, then cosine or step decay.

    ``spent_share``: the share of a wall-clock :class:`Budget` spent. The decay
    then follows whichever of steps and time is further along, so a run that
    stops at its budget ends its schedule there too, however fast the machine
    is. (Planning a step count from a measured speed would keep the schedule a
    function of the step alone, but the first steps on a GPU are the slowest
    and the data loader's speed drifts, so such a plan ends early or is cut
    short before its decay is done.)
    """
    base, total, warmup = float(train_cfg["lr"]), int(train_cfg["steps"]), int(train_cfg["warmup_steps"])
    if step < warmup:
        return base * (0.01 + 0.99 * step / warmup)
    if train_cfg["schedule"] == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if spent_share is not None:
            progress = max(progress, min(1.0, spent_share))
        floor = float(train_cfg["min_lr_ratio"])
        return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
    if train_cfg["schedule"] == "step":
        spent = -math.inf if spent_share is None else spent_share
        return base * 0.1 ** sum(step >= fraction * total or spent >= fraction for fraction in train_cfg["milestones"])
    raise ConfigError(f"training schedule must be 'cosine' or 'step', got {train_cfg['schedule']!r}")


def make_optimizer(model: torch.nn.Module, train_cfg: Mapping) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum) over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    lr, decay = float(train_cfg["lr"]), float(train_cfg["weight_decay"])
    if train_cfg["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    if train_cfg["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(train_cfg["momentum"]), weight_decay=decay)
    raise ConfigError(f"training optimizer must be 'adamw' or 'sgd', got {train_cfg['optimizer']!r}")


def optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move a (resumed) optimizer's state to ``device``; the step counters stay where torch keeps them."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, step: int,
                   train_cfg: Mapping, section: str, lr: Optional[float] = None) -> None:
    """Backward ``loss`` and step at ``lr`` (None: step ``step``'s), gradients clipped to ``clip_grad_norm``."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training loss is {loss.item()} at step {step}; lower {section}.lr")
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, train_cfg) if lr is None else lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if train_cfg.get("clip_grad_norm"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(train_cfg["clip_grad_norm"]))
    optimizer.step()


def run_steps(steps: range, inputs: Iterable, train_step: Callable[[int, object], StepLosses],
              checkpoint_at: Callable[[int], dict], out_url: str, train_cfg: Mapping, progress: bool,
              desc: str, budget: Optional[Budget] = None) -> list[StepLosses]:
    """``train_step(step, item)`` over ``zip(steps, inputs)`` with a progress bar and periodic checkpoints.

    The bar shows each value averaged over the last 20 steps; a checkpoint
    (``checkpoint_at(done)``) is written every ``checkpoint_every`` steps
    except the last, which the caller writes as the final one. With a
    ``budget``, no step starts once it is spent (the last may end up to one
    step after it); the run then reached step ``steps.start + len(history)``.
    """
    bar = tqdm(total=steps.stop, initial=steps.start, disable=not progress, mininterval=2.0, desc=desc)
    history: list[StepLosses] = []
    for step, item in zip(steps, inputs):
        if budget is not None and budget.is_spent():
            bar.write(f"step {step}: the {budget.seconds:.0f} s budget is spent; stopping")
            break
        history.append(train_step(step, item))
        bar.update(1)
        recent = history[-20:]
        shown = {name: f"{sum(h[name] for h in recent) / len(recent):.3g}" for name in recent[0]}
        bar.set_postfix(shown, refresh=False)
        done = step + 1
        if done % int(train_cfg["checkpoint_every"]) == 0 and done < steps.stop:
            checkpoint = checkpoint_at(done)
            write_checkpoint(out_url, checkpoint)
            bar.write(f"step {done}: checkpoint {checkpoint['checkpoint_id']} -> {out_url} ({shown})")
    bar.close()
    return history


def resume(out_url: str, optimizer: torch.optim.Optimizer, train_cfg: Mapping, section: str,
           load: Callable[[str], dict]) -> int:
    """Continue from the checkpoint at ``out_url``: its step (0 when there is none yet).

    ``load(out_url)`` reads the checkpoint, checks it and loads the model's
    weights, and returns it; the optimizer state is restored here.
    """
    fs, path = fsspec.core.url_to_fs(out_url)
    if not fs.exists(path):
        return 0
    checkpoint = load(out_url)
    if checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    step = int(checkpoint["step"])
    if step > int(train_cfg["steps"]):
        raise ConfigError(f"{out_url!r} is at step {step}, beyond {section}.steps {train_cfg['steps']}")
    return step


def write_final(out_url: str, checkpoint: dict, train_cfg: Mapping) -> dict:
    """Write the run's last checkpoint (float16 weights only with ``release``); returns what was written."""
    final = strip_for_release(checkpoint) if train_cfg["release"] else checkpoint
    write_checkpoint(out_url, final)
    return final


def recent_mean(history: list[StepLosses], key: str, count: int = 50) -> float:
    """The mean of ``key`` over the last ``count`` steps (NaN when none ran)."""
    recent = [h[key] for h in history[-count:]]
    return sum(recent) / len(recent) if recent else float("nan")


def as_is(batch):
    """A DataLoader ``collate_fn`` for datasets whose items are whole batches already (``batch_size=None``);
    a named function, not a lambda, so that loader worker processes can unpickle it."""
    return batch
