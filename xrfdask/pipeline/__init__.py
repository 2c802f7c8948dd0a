"""``xd.process``: one configured pipeline from a raw map to groups, images and exports.

- :mod:`~xrfdask.pipeline.config`: the versioned TOML configuration, checked before any work;
- :mod:`~xrfdask.pipeline.steps`: each step's inputs, outputs and run;
- :mod:`~xrfdask.pipeline.provenance`: what each step records and how a re-run knows it is
  up to date;
- :mod:`~xrfdask.pipeline.run`: :func:`process`, the runner.
"""

from xrfdask.pipeline.config import EXAMPLE_CONFIG, STEPS, VERSION, PipelineConfig, load_config
from xrfdask.pipeline.run import PipelineError, ProcessReport, StepReport, process

__all__ = [
    "EXAMPLE_CONFIG",
    "STEPS",
    "VERSION",
    "PipelineConfig",
    "PipelineError",
    "ProcessReport",
    "StepReport",
    "load_config",
    "process",
]
