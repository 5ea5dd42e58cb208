-- The schema chantbot had before versioned migrations (IF NOT EXISTS: such a database is adopted as it is).
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, action TEXT, received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL,
    installation_id INTEGER, status TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
    run_after REAL NOT NULL, lease_until REAL, last_error TEXT, created_at REAL NOT NULL, finished_at REAL);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (status, run_after);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (key, status);
CREATE TABLE IF NOT EXISTS issue_state (
    repo TEXT NOT NULL, number INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (repo, number));
CREATE TABLE IF NOT EXISTS issue_index (
    repo TEXT NOT NULL, number INTEGER NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    state TEXT NOT NULL, category TEXT, PRIMARY KEY (repo, number));
CREATE VIRTUAL TABLE IF NOT EXISTS issue_fts USING fts5(repo UNINDEXED, number UNINDEXED, title, body);
CREATE TABLE IF NOT EXISTS spec_seq (repo TEXT NOT NULL, day TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (repo, day));
CREATE TABLE IF NOT EXISTS specs (
    repo TEXT NOT NULL, number INTEGER NOT NULL, stage TEXT NOT NULL, spec_id TEXT NOT NULL,
    path TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (repo, number, stage));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL, installation_id INTEGER NOT NULL,
    branch TEXT NOT NULL, path TEXT NOT NULL, content TEXT NOT NULL, committed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS repo_meta (repo TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (repo, key));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL, number INTEGER NOT NULL, stage TEXT NOT NULL,
    installation_id INTEGER NOT NULL, status TEXT NOT NULL, waiting_sha TEXT, data TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS runs_active ON runs (repo, number, stage)
    WHERE status IN ('queued', 'running', 'waiting_ci');
CREATE INDEX IF NOT EXISTS runs_waiting ON runs (repo, waiting_sha) WHERE status = 'waiting_ci';
CREATE TABLE IF NOT EXISTS spend (installation_id INTEGER NOT NULL, day TEXT NOT NULL, usd REAL NOT NULL,
    PRIMARY KEY (installation_id, day));
