class OptimizerError(Exception):
    """Base class of every error the optimizer raises (a bug or an unusable engine, never
    an infeasible request: infeasibility is a plan status)."""


class EngineUnavailable(OptimizerError):
    """The requested engine is not installed on this machine."""
