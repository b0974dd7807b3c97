"""Reports built from findings: JSON now; Markdown and HTML join with the nightly report."""
