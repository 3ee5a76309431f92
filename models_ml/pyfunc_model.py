"""The MLflow model, as code, of every model version (MLflow's "models from code"):
models_ml.pyfunc.save logs this file with the version's MOJO as an artefact. Loading it
runs it, which sets the model; nothing is unpickled."""

import mlflow

from models_ml.pyfunc import MojoModel

mlflow.models.set_model(MojoModel())
