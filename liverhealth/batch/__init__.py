"""Cohorts: one model over many CTs, each case written as `liverhealth segment` writes it, and a
cohort table (CSV, Parquet) with plots.

``cases`` finds the cases (files, folders, CSV lists); ``work`` segments one case (in a worker
that holds one workflow ``Workstation``, so the model sessions load once per worker); ``engines``
runs the cases on a local process pool or on Ray; ``cohort`` writes the table and plots.
"""

from liverhealth.batch.cases import Case, discover, input_sha256
from liverhealth.batch.engines import ENGINES, run_batch
from liverhealth.batch.work import COLUMNS, CaseOptions, Row

__all__ = ["COLUMNS", "ENGINES", "Case", "CaseOptions", "Row", "discover", "input_sha256", "run_batch"]
