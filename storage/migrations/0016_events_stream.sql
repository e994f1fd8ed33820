-- A third kind of schedule: "keep running". Its spider (the room_events stream) is started
-- again whenever it ends: at once after a success, after a growing back-off after failures
-- (agent/scheduler.py). Such a schedule has neither an interval nor a cron expression.
ALTER TABLE schedules ADD COLUMN keep_running boolean NOT NULL DEFAULT false;
ALTER TABLE schedules DROP CONSTRAINT schedules_check;
ALTER TABLE schedules ADD CONSTRAINT schedules_check CHECK (
    CASE WHEN keep_running THEN interval_seconds IS NULL AND cron IS NULL
         ELSE (interval_seconds IS NULL) <> (cron IS NULL) END
);
