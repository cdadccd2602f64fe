"""The device lab: one `harness run --cluster` drives every machine that runs `harness agent`, through
Dask distributed (imported only here, and only when --cluster or `harness agent` is used)."""
