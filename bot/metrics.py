"""Prometheus metrics, one registry per running chantbot (created in the app factory, not at import)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Deliveries, queue depth, job latency, GitHub and LLM calls, LLM tokens."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.deliveries = Counter("chantbot_deliveries_total", "Webhook deliveries by event and outcome",
                                  ["event", "outcome"], registry=r)
        self.queue_depth = Gauge("chantbot_queue_depth", "Jobs not yet done, by status", ["status"], registry=r)
        self.job_seconds = Histogram("chantbot_job_seconds", "Time from delivery to job completion",
                                     ["kind"], registry=r,
                                     buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
        self.jobs = Counter("chantbot_jobs_total", "Job attempts by kind and outcome", ["kind", "outcome"], registry=r)
        self.github_calls = Counter("chantbot_github_requests_total", "GitHub requests by method and outcome",
                                    ["method", "outcome"], registry=r)
        self.llm_calls = Counter("chantbot_llm_requests_total", "Model calls (triage and stage agents) by outcome", ["outcome"],
                                 registry=r)
        self.llm_tokens = Counter("chantbot_llm_tokens_total", "Model tokens by kind", ["kind"], registry=r)
        # Installation ids are the operator's own (the App's installations), not a sender's choice: bounded.
        self.spend = Counter("chantbot_model_spend_usd_total", "What model calls cost, in US dollars at list prices, "
                             "by installation (triage and stage agents)", ["installation"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
