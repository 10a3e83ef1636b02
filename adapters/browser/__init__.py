"""What runs in a browser: the planner page's scripts and stylesheet, the vendored chart
and API-docs libraries (`static/`), and the self-contained HTML report built from the same
files (`report`). Here, below both entry points, so the API serves the assets and the page
while the CLI writes the same report."""
