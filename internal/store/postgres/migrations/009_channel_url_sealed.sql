-- A webhook channel's URL often carries a token: it is kept sealed
-- (internal/secret) in url_sealed, and config keeps only its redacted form.
-- SQL cannot seal, so the gate seals the URLs of existing rows at start
-- (alert.Service.SealChannelURLs).
ALTER TABLE channels ADD COLUMN url_sealed TEXT NOT NULL DEFAULT '';
