"""Training: a generic trainer over (modules, batch -> loss) tasks, and the stages that build them.

``Trainer(build_task("restorer", StageOptions(model="swintormer-tiny")), source, TrainConfig(...), out_dir).fit()``
"""

from swintormer.training.stages import STAGES, build_task
from swintormer.training.tasks import StageOptions, TrainTask
from swintormer.training.trainer import TrainConfig, Trainer, TrainResult

__all__ = ["STAGES", "StageOptions", "TrainConfig", "TrainResult", "TrainTask", "Trainer", "build_task"]
