# PostgreSQL 15 with q3c and pgsphere from Debian's packages.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 postgresql-15-q3c postgresql-15-pgsphere \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
RUN initdb --auth-local=trust --auth-host=scram-sha-256 -U skyvault \
 && echo "listen_addresses = '*'" >> $PGDATA/postgresql.conf \
 && echo "host all all 0.0.0.0/0 scram-sha-256" >> $PGDATA/pg_hba.conf
EXPOSE 5432
CMD ["postgres"]
