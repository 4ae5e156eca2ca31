-- Which Kafka cluster a position was read from. Offsets only mean something within one log: positions written
-- against another cluster (a new broker under the same database) are reset to the start of this cluster's log.
ALTER TABLE sync_offsets ADD COLUMN kafka_cluster text;
