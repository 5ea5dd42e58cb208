-- GitHub's limits shared by processes; what retention needs; the health probe.
CREATE INDEX runs_issue ON runs (repo, number, id);
CREATE INDEX runs_finished ON runs (updated_at) WHERE status IN ('done', 'failed', 'cancelled');
CREATE TABLE github_limits (
    installation_id INTEGER PRIMARY KEY, stamps TEXT NOT NULL DEFAULT '[]', sent TEXT NOT NULL DEFAULT '[]',
    writes_until REAL NOT NULL DEFAULT 0, requests_until REAL NOT NULL DEFAULT 0, tokens_until REAL NOT NULL DEFAULT 0);
CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
INSERT INTO health (id, at) VALUES (1, 0);
ALTER TABLE outbox ADD COLUMN committed_at REAL;
UPDATE outbox SET committed_at = strftime('%s', 'now') WHERE committed = 1;
CREATE INDEX outbox_pending ON outbox (repo, committed);
CREATE INDEX jobs_finished ON jobs (status, finished_at);
CREATE INDEX deliveries_received ON deliveries (received_at);
