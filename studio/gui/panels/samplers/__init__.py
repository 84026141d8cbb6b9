"""The Samplers panel: sample quality against network evaluations for the run's
checkpoint, one curve per sampler, filling in as the cells finish."""

from .panel import SamplersPanel

__all__ = ["SamplersPanel"]
