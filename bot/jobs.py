"""The kinds of job chantbot queues (their handlers are registered once, in the runtime's wiring)."""

EVENT = "event"  # a stored webhook delivery, through the router
COMMIT_SPECS = "commit-specs"  # queued spec files of a repository, in one commit
INDEX_REPO = "index-repo"  # a repository's issues, read once for duplicates and the local triager
STAGE = "stage"  # one step of a stage run
STAGE_AUTO = "stage-auto"  # a stage triage's own label starts once its grace period is over
RETRIAGE = "retriage"  # the re-triage a reporter's answers wait for, once they have been quiet for a while
NEEDS_INFO = "needs-info"  # a repository's issues waiting for answers: one reminder, then closing
