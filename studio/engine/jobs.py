"""The jobs the app, the CLI and a cluster drive the same way: generators of events
(engine.events), paused and cancelled through a JobControl (engine.control)."""

from .evaluate import evaluate, evaluate_job
from .sampling import sample_job
from .trainer import train_job, warm_up

__all__ = ["train_job", "sample_job", "evaluate_job", "evaluate", "warm_up"]
