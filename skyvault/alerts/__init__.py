"""Alert packets in ZTF's Avro format (schema 4.02): built from the archive's candidates as a
stream's requester, archived per night and stream, served over HTTP and, where a broker is
configured, published to Kafka. See alerts/README.md."""
