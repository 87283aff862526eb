-- +goose Up
-- phone_checked says the API created the row: it read the number with the
-- phone library, stored it in E.164 and checked ALLOWED_COUNTRIES at the
-- create. A worker reads a claimed number with the library again only when
-- it is not set (rows other systems insert), which saves it the most
-- expensive step of a call's preparation.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS phone_checked BOOLEAN NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE messages DROP COLUMN IF EXISTS phone_checked;
