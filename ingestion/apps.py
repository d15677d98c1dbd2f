from django.apps import AppConfig


class IngestionConfig(AppConfig):
    """Sources and retrieval (web pages, PDFs, CSVs); the tables arrive with that feature."""

    name = "ingestion"
