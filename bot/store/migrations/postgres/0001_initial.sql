-- chantbot's store on PostgreSQL: the same records as on SQLite; full-text search with tsvector and GIN.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, action TEXT, received_at DOUBLE PRECISION NOT NULL);
CREATE INDEX deliveries_received ON deliveries (received_at);
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL,
    installation_id BIGINT, status TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
    run_after DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION, last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION);
CREATE INDEX jobs_ready ON jobs (run_after, id) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_key ON jobs (key, status);
CREATE INDEX jobs_finished ON jobs (status, finished_at);
-- One running job per key, across every worker process.
CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs (key) WHERE status = 'running';
CREATE TABLE issue_state (
    repo TEXT NOT NULL, number INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (repo, number));
CREATE TABLE issue_index (
    repo TEXT NOT NULL, number INTEGER NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    state TEXT NOT NULL, category TEXT,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')) STORED,
    PRIMARY KEY (repo, number));
CREATE INDEX issue_index_tsv ON issue_index USING GIN (tsv);
CREATE TABLE spec_seq (repo TEXT NOT NULL, day TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (repo, day));
CREATE TABLE specs (
    repo TEXT NOT NULL, number INTEGER NOT NULL, stage TEXT NOT NULL, spec_id TEXT NOT NULL,
    path TEXT NOT NULL, status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (repo, number, stage));
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY, repo TEXT NOT NULL, installation_id BIGINT NOT NULL, branch TEXT NOT NULL,
    path TEXT NOT NULL, content TEXT NOT NULL, committed INTEGER NOT NULL DEFAULT 0,
    committed_at DOUBLE PRECISION);
CREATE INDEX outbox_pending ON outbox (repo, committed);
CREATE TABLE repo_meta (repo TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (repo, key));
CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY, repo TEXT NOT NULL, number INTEGER NOT NULL, stage TEXT NOT NULL,
    installation_id BIGINT NOT NULL, status TEXT NOT NULL, waiting_sha TEXT, data TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1, created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL);
CREATE UNIQUE INDEX runs_active ON runs (repo, number, stage)
    WHERE status IN ('queued', 'running', 'waiting_ci');
CREATE INDEX runs_issue ON runs (repo, number, id);
CREATE INDEX runs_waiting ON runs (repo, waiting_sha) WHERE status = 'waiting_ci';
CREATE INDEX runs_finished ON runs (updated_at) WHERE status IN ('done', 'failed', 'cancelled');
CREATE TABLE spend (
    installation_id BIGINT NOT NULL, day TEXT NOT NULL, usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (installation_id, day));
CREATE TABLE github_limits (
    installation_id BIGINT PRIMARY KEY, stamps DOUBLE PRECISION[] NOT NULL DEFAULT '{}',
    sent DOUBLE PRECISION[] NOT NULL DEFAULT '{}',
    writes_until DOUBLE PRECISION NOT NULL DEFAULT 0, requests_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    tokens_until DOUBLE PRECISION NOT NULL DEFAULT 0);
CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), at DOUBLE PRECISION NOT NULL);
INSERT INTO health (id, at) VALUES (1, 0);
