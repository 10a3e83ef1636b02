"""The `windmaker` command line (`cli.main:main`), one module per command; terminal
reports in `cli.report`. It calls `service/` and `adapters/`, never `api/`."""
