"""The training dashboard: the Train panel with live plots, samples, run control and history."""

from .panel import TrainingPanel

__all__ = ["TrainingPanel"]
