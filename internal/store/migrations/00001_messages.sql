-- The seed's table, kept exactly: other systems insert (id, content,
-- phone_number) and may read is_sent. IF NOT EXISTS lets this run over a
-- database that init/ already made.
-- +goose Up
CREATE TABLE IF NOT EXISTS messages (
    id           VARCHAR(36)  PRIMARY KEY,
    content      VARCHAR(255) NOT NULL,
    phone_number VARCHAR(20)  NOT NULL,
    is_sent      BOOLEAN      NOT NULL DEFAULT FALSE
);
