# The reference pipeline (ingest + projector) on Debian's Python 3.11, installed offline from a
# wheelhouse downloaded on the host. Stubs are generated on the host by the builder.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \
 && python3 -m venv /opt/venv
COPY wheels/ /tmp/wheels/
RUN /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt \
 && rm -rf /tmp/wheels
COPY app/ /app/
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app:/app/gen PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
CMD ["python", "-m", "refpipe.ingest"]
