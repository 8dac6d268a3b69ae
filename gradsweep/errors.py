"""Errors a user can cause: the CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations


class GradsweepError(Exception):
    """A user's mistake (bad argument, bad spec, unknown problem); the message is one line."""


class ProblemError(GradsweepError):
    """A problem name, its parameters or its data are not usable."""


class BalancerError(GradsweepError):
    """A balancer name or its hyperparameters are not usable."""


class DryRunError(ProblemError):
    """A problem broke its contract in the dry run (one training step and one test batch
    before any trial); the message names the task and the method."""


class PluginWarning(UserWarning):
    """Something in a user's plug-in that works but is likely not what was meant (the CLI
    prints it as one ``warning: …`` line on stderr)."""
