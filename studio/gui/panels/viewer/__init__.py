"""The reverse-process viewer panel: a view over ``studio.session.SamplingSession``
(sample, scrub, step and branch, export)."""

from .panel import ViewerPanel

__all__ = ["ViewerPanel"]
