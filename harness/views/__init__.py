"""Views: each result of harness/analysis laid out once as a table model (table.py), drawn by every renderer: the
terminal (rich), markdown (findings), the web (one Jinja macro), JSON and CSV; and PNG figures. One module formats
every number (formats.py), one palette colours each target (palette.py). Views never read the database."""
