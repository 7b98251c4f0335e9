-- Schema fixture v1: a database exactly as schema 1 (the first store) wrote it, with a result, an
-- alert and a model. storage_test migrates it to the current schema (results gain model_input and
-- input_hash, NULL for these old rows).
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  lane INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  asset TEXT NOT NULL,
  wall_ms INTEGER NOT NULL,
  body BLOB NOT NULL);
CREATE INDEX outbox_lane_id ON outbox(lane, id);
CREATE TABLE results(
  id INTEGER PRIMARY KEY,
  asset TEXT NOT NULL,
  channel TEXT NOT NULL,
  wall_ms INTEGER NOT NULL,
  score REAL NOT NULL,
  verdict INTEGER NOT NULL,
  iso_zone INTEGER NOT NULL,
  velocity_rms REAL NOT NULL,
  model_version TEXT NOT NULL,
  features BLOB,
  outbox_id INTEGER);
CREATE INDEX results_asset_time ON results(asset, wall_ms);
CREATE TABLE alerts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  asset TEXT NOT NULL,
  level INTEGER NOT NULL,
  state INTEGER NOT NULL,
  raised_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  score REAL NOT NULL,
  features BLOB,
  acknowledged_by TEXT,
  acknowledged_ms INTEGER,
  cleared_ms INTEGER,
  raise_outbox_id INTEGER);
CREATE INDEX alerts_state ON alerts(state, id);
CREATE INDEX alerts_asset_time ON alerts(asset, raised_ms);
CREATE INDEX alerts_pending ON alerts(raise_outbox_id) WHERE raise_outbox_id IS NOT NULL;
CREATE TABLE alert_events(
  id INTEGER PRIMARY KEY,
  alert_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  wall_ms INTEGER NOT NULL,
  by TEXT NOT NULL,
  reason TEXT NOT NULL,
  score REAL NOT NULL,
  outbox_id INTEGER);
CREATE INDEX alert_events_alert ON alert_events(alert_id, id);
CREATE INDEX alert_events_pending ON alert_events(outbox_id) WHERE outbox_id IS NOT NULL;
CREATE TABLE health_events(
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL,
  wall_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  detail TEXT NOT NULL);
CREATE INDEX health_device_time ON health_events(device, wall_ms);
CREATE TABLE snapshots(
  id INTEGER PRIMARY KEY,
  alert_id INTEGER NOT NULL,
  asset TEXT NOT NULL,
  channel TEXT NOT NULL,
  wall_ms INTEGER NOT NULL,
  sample_rate_hz REAL NOT NULL,
  units INTEGER NOT NULL,
  samples BLOB NOT NULL);
CREATE INDEX snapshots_alert ON snapshots(alert_id);
CREATE TABLE models(
  id INTEGER PRIMARY KEY,
  asset TEXT NOT NULL,
  version TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  feature_hash TEXT NOT NULL,
  path TEXT NOT NULL,
  note TEXT NOT NULL,
  UNIQUE(asset, version));
CREATE TRIGGER outbox_alert_gone AFTER DELETE ON outbox WHEN old.kind = 1 BEGIN
  UPDATE alerts SET raise_outbox_id = NULL WHERE raise_outbox_id = old.id;
  UPDATE alert_events SET outbox_id = NULL WHERE outbox_id = old.id;
END;
INSERT INTO outbox(id, lane, kind, asset, wall_ms, body) VALUES(1, 1, 0, 'fan9', 5, x'');
INSERT INTO results(id, asset, channel, wall_ms, score, verdict, iso_zone, velocity_rms,
  model_version, features, outbox_id) VALUES(1, 'fan9', 'fan9/accel', 5, 0.4, 0, 1, 1.2, '1', NULL, 1);
INSERT INTO alerts(id, asset, level, state, raised_ms, reason, score, features)
  VALUES(1, 'fan9', 2, 2, 4, 'score 1.4 >= 1.0 in 3 of last 5 windows', 1.4, NULL);
INSERT INTO models(asset, version, created_ms, state, feature_hash, path, note)
  VALUES('fan9', '1', 3, 'active', '42', '/var/lib/vibgate/models/fan9/v1.vgm', 'fixture');
PRAGMA user_version = 1;
