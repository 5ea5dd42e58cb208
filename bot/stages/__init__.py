"""The stage runner: agents with repository tools, their commits, CI verdicts and the workflow comment."""
