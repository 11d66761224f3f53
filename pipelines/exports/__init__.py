"""Exported files: Parquet and CSV per restaurant and business day."""
