"""Output formats of plans and comparisons for people: Excel workbooks (`xlsx`)."""

from adapters.exports.xlsx import CONTENT_TYPE, comparison_workbook, plan_workbook

__all__ = ["CONTENT_TYPE", "comparison_workbook", "plan_workbook"]
