# The SkyVault application image: web service and workers run from the same image.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/skyvault
COPY . .
RUN pip install --no-cache-dir -e . && useradd --system skyvault
USER skyvault
ENV SKYVAULT_HOME=/var/lib/skyvault
CMD ["skyvault", "serve", "--host", "0.0.0.0", "--port", "8000"]
