"""`harness serve`: the results as a read-only web dashboard (Flask, served by waitress)."""
