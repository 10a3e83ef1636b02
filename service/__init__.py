"""The use cases: each a plain function the HTTP API, the CLI and the job workers share.

- `service.solving`: validate input into an `AllocationRequest`, solve it.
- `service.jobs`: submit, get, list and cancel allocation and comparison jobs.
- `service.execution`: run one claimed job (the one path for in-process and Celery workers).
- `service.comparisons` / `service.differences`: what-if scenarios, one loop for every caller;
  `service.comparison_notes` (a row's caveat and reason), `service.comparison_downloads`
  (scenario plan CSVs, the differences CSV).
- `service.keys`: API keys and roles.

Storage and the queue are reached through the protocols of `service.ports`; this package
imports no Flask, click, Celery or SQLAlchemy (an import-linter contract says so).
"""
