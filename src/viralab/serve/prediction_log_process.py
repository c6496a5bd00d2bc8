"""Where the process-writer side of the prediction log was imported from before it moved
into `viralab.serve.prediction_log` (`process_log`, `pipe`): kept so those imports work."""

from viralab.serve.prediction_log.pipe import (
    HEADER,
    PIPE_BYTES,
    WRITER_MODULE,
    read_frame,
    write_frame,
)
from viralab.serve.prediction_log.process_log import ProcessPredictionLog
from viralab.serve.prediction_log.row_log import RowLog
from viralab.serve.prediction_log.rows import OBJECT_BYTES

__all__ = [
    "HEADER",
    "OBJECT_BYTES",
    "PIPE_BYTES",
    "WRITER_MODULE",
    "ProcessPredictionLog",
    "RowLog",
    "read_frame",
    "write_frame",
]
