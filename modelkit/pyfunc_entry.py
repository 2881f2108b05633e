"""The file MLflow logs as the pyfunc's code ("models from code": nothing is pickled).

MLflow runs this file when it loads the model; :class:`modelkit.pyfunc.EventsModel` does
the work. Logged by :func:`modelkit.pyfunc.log_events_model`.
"""

import mlflow

from modelkit.pyfunc import EventsModel

mlflow.models.set_model(EventsModel())
