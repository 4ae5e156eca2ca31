-- The SYNC_ code a failed rebuild ended with, so a redelivered command repeats its outcome with the same code.
ALTER TABLE projection_rebuilds ADD COLUMN error_code text;
