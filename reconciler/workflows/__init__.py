"""io.net workflow YAML: the tools it uses, credentials written into it, and coverage by the desired state."""

from __future__ import annotations

from reconciler.workflows.catalogue import catalogue
from reconciler.workflows.coverage import check
from reconciler.workflows.extract import Extraction, apply_extraction, plan_extraction
from reconciler.workflows.findings import Finding, Kind, Severity, WorkflowReport, format_findings
from reconciler.workflows.scan import WorkflowScan, scan

__all__ = [
    "Extraction",
    "Finding",
    "Kind",
    "Severity",
    "WorkflowReport",
    "WorkflowScan",
    "apply_extraction",
    "catalogue",
    "check",
    "format_findings",
    "plan_extraction",
    "scan",
]
