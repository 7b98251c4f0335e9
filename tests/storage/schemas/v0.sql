-- Schema fixture v0: a database as a build before the store existed would leave it — an
-- empty SQLite file (user_version 0, no tables). storage_test opens every fixture in this folder
-- and checks that it is migrated to the current schema. When kSchemaVersion goes to N + 1, add
-- vN.sql: the schema (and a few rows) exactly as version N wrote them.
PRAGMA user_version = 0;
