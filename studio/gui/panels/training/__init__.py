"""The training panel: a view over ``studio.session.TrainingSession`` (the config form,
run control, the monitor's plots, previews and log)."""

from .panel import TrainingPanel

__all__ = ["TrainingPanel"]
