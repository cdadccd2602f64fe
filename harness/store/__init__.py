"""Where results live: the schema, opening a database, writing runs, reading them back."""
from .database import (DatabaseMissing, QueryError, QueryTimeout, StorageError, WriteRefused, database_url,
                       open_engine, open_reader)
from .reads import (QUERY_TIMEOUT_S, count_runs, coverage, latest_repeats, latest_runs, precision_coverage,
                    read_only_query)
from .schema import (PUBLISHED_HOST_PREFIX, RUN_KEY, SAME_SPEC_KEY, SERIES_KEY, DelegationCoverage, Host, HostPeak, ModelFlops, OpProfile, PrecisionCoverage, Predictor, Run, Sample,
                     Sweep, float_classes, key_of, recipe_label)
from .writes import (finish_sweep, save_coverage, save_model_flops, save_peak, save_predictor, save_run, set_process_spread,
                     start_sweep)

__all__ = ["PUBLISHED_HOST_PREFIX", "QUERY_TIMEOUT_S", "RUN_KEY", "SAME_SPEC_KEY", "SERIES_KEY", "key_of", "DatabaseMissing", "DelegationCoverage", "Host", "HostPeak", "ModelFlops", "Predictor",
           "PrecisionCoverage", "precision_coverage", "OpProfile", "QueryError", "QueryTimeout", "Run", "Sample",
           "StorageError", "Sweep", "WriteRefused",
           "count_runs", "coverage", "float_classes", "database_url", "finish_sweep", "latest_repeats", "latest_runs", "open_engine", "open_reader",
           "read_only_query", "recipe_label", "save_coverage", "save_model_flops", "save_peak", "save_predictor", "save_run", "set_process_spread", "start_sweep"]
