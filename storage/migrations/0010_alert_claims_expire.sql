-- A claim on an alert used to be the row itself, kept forever: a process that died (or a
-- notifier thread that ended) between claiming and sending left the alert claimed and never
-- sent. Now a row says when it was claimed and whether it was sent; a claim not sent within
-- the claim timeout (storage/alerts.py) may be taken again.
ALTER TABLE alert_notifications
    ADD COLUMN claimed_at timestamptz,
    ADD COLUMN sent_at    timestamptz;

-- Rows from before were claimed, and nearly all sent: count them as sent, so an upgrade does
-- not repeat every past alert.
UPDATE alert_notifications SET claimed_at = notified_at, sent_at = notified_at;

ALTER TABLE alert_notifications
    ALTER COLUMN claimed_at SET NOT NULL,
    ALTER COLUMN claimed_at SET DEFAULT now(),
    DROP COLUMN notified_at;
