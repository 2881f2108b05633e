"""The prediction log: one typed record with its writer and reader side by side.

Serving builds a :class:`PredictionRecord` per answered prediction and hands them to
:class:`PredictionLog` (durable ``O_APPEND`` writes, rotation by rows); monitoring reads a
window back with :func:`read_prediction_log`. ``CONTRACT.md`` ("Prediction log") describes
every field, the file naming, rotation and durability rules for readers without this code.

Modules: :mod:`~core.predlog.record` (the record, its JSON line and the monitored column
names), :mod:`~core.predlog.files` (file names), :mod:`~core.predlog.writer`,
:mod:`~core.predlog.reader`.
"""

from core.predlog.files import LOG_GLOB, log_file_name, log_files, parse_log_file_name
from core.predlog.reader import read_prediction_log
from core.predlog.record import (
    PREDICTION_CATEGORICAL,
    PREDICTION_COLUMNS,
    PREDICTION_NUMERIC,
    RANKED_CATEGORIES,
    RECORD_COLUMNS,
    PredictionRecord,
    finite,
    prediction_columns,
    rank_categories,
)
from core.predlog.writer import PredictionLog, PredictionLogError

__all__ = [
    "LOG_GLOB",
    "PREDICTION_CATEGORICAL",
    "PREDICTION_COLUMNS",
    "PREDICTION_NUMERIC",
    "RANKED_CATEGORIES",
    "RECORD_COLUMNS",
    "PredictionLog",
    "PredictionLogError",
    "PredictionRecord",
    "finite",
    "log_file_name",
    "log_files",
    "parse_log_file_name",
    "prediction_columns",
    "rank_categories",
    "read_prediction_log",
]
