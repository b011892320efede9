"""io.net workflow YAML: the tools it uses, credentials written into it, and coverage by the desired state."""

from __future__ import annotations

from reconciler.workflows.catalogue import CATALOGUE_FILE, Catalogue, binds, catalogue, family
from reconciler.workflows.coverage import check
from reconciler.workflows.extract import (
    Extraction,
    FileChange,
    apply_extraction,
    plan_extraction,
)
from reconciler.workflows.findings import Finding, Kind, Severity, WorkflowReport, format_findings
from reconciler.workflows.scan import InlineCredential, ToolUse, WorkflowScan, scan, scan_document

__all__ = [
    "CATALOGUE_FILE",
    "Catalogue",
    "Extraction",
    "FileChange",
    "Finding",
    "InlineCredential",
    "Kind",
    "Severity",
    "ToolUse",
    "WorkflowReport",
    "WorkflowScan",
    "apply_extraction",
    "binds",
    "catalogue",
    "check",
    "family",
    "format_findings",
    "plan_extraction",
    "scan",
    "scan_document",
]
