"""H2O AutoML on gold feature tables: use cases, training, registry, MOJO scoring, API.

The lead's flow calls these (all take the one `Settings`):

    train(settings, use_case, lineage=None)      -> TrainResult   (models_ml.train)
    score(settings, use_case, table=None)        -> ScoreResult   (models_ml.batch)
    list_models / show_model / promote / rollback                  (models_ml.registry)
    create_app(settings)                          -> FastAPI app   (models_ml.api)
"""
