from cms_pipeline.cli import app

app()
